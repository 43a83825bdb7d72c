// A small JSON reader for the documents the loader hands plexus-info (the
// plugin descriptions, load reports, topologies): enough to walk them and to
// check that a plugin's JSON is well formed before embedding it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace plexus::info {

struct JsonField;

struct JsonValue {
  enum class Kind { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  bool boolean = false;
  std::string text;  // a string's value, or a number as written
  std::vector<JsonValue> items;
  // An object's fields in document order (a struct, not a std::pair: a
  // pair of a still incomplete JsonValue fails to compile with clang 14).
  std::vector<JsonField> fields;

  // The field `key` of an object, nullptr when absent or not an object.
  const JsonValue *get(std::string_view key) const;
  // A string's value, a number's or boolean's text, "" for null.
  std::string as_text() const;
};

struct JsonField {
  std::string key;
  JsonValue value;
};

// nullopt when `text` is not exactly one JSON value (whitespace around it
// allowed).
std::optional<JsonValue> parse_json(std::string_view text);

}  // namespace plexus::info
