// A small streaming JSON writer for the reports (load report, topology,
// plugin descriptions, statistics). Commas and escaping are handled here so
// callers only say what goes where.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/types.h"

namespace plexus::core {

// `s` with quotes, backslashes and control characters escaped, unquoted.
std::string json_escape(std::string_view s);

// Copies `text` into a caller's buffer under the rules of plexus's report
// calls: NUL-terminated, truncated to capacity, *needed (may be NULL) gets
// the full size with the NUL, capacity 0 only asks for the size.
plx_status copy_text_out(const std::string &text, char *buf, size_t capacity, size_t *needed);

class JsonWriter {
 public:
  JsonWriter &begin_object();
  JsonWriter &end_object();
  JsonWriter &begin_array();
  JsonWriter &end_array();
  // The key of the next value inside an object.
  JsonWriter &key(std::string_view name);
  JsonWriter &value(std::string_view s);
  JsonWriter &value(const char *s);  // NULL writes null
  JsonWriter &value(int64_t v);
  JsonWriter &value(uint64_t v);
  JsonWriter &value(int32_t v) { return value(static_cast<int64_t>(v)); }
  JsonWriter &value(uint32_t v) { return value(static_cast<uint64_t>(v)); }
  JsonWriter &value(double v);
  JsonWriter &value(bool v);
  JsonWriter &null();
  // A field: key then value.
  template <typename T>
  JsonWriter &field(std::string_view name, T v) {
    return key(name).value(v);
  }
  const std::string &str() const { return out_; }

 private:
  void before_value();
  std::string out_;
  std::vector<bool> first_;  // per open container: nothing written yet
  bool after_key_ = false;
};

}  // namespace plexus::core
