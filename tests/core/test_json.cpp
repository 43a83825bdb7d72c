#include <doctest/doctest.h>

#include "core/json.hpp"

using plexus::core::JsonWriter;

TEST_CASE("Core.Json.nested_containers_get_commas") {
  JsonWriter w;
  w.begin_object().field("a", int64_t{1}).key("list").begin_array();
  w.value("x").value(2.5).value(true).null().end_array();
  w.key("empty").begin_object().end_object().end_object();
  CHECK(w.str() == R"({"a":1,"list":["x",2.5,true,null],"empty":{}})");
}

TEST_CASE("Core.Json.strings_are_escaped") {
  JsonWriter w;
  w.value(std::string_view("q\"b\\n\n\x01"));
  CHECK(w.str() == "\"q\\\"b\\\\n\\n\\u0001\"");
}

TEST_CASE("Core.Json.non_finite_numbers_become_null") {
  JsonWriter w;
  w.begin_array().value(1.0 / 0.0).value(static_cast<const char *>(nullptr)).end_array();
  CHECK(w.str() == "[null,null]");
}
