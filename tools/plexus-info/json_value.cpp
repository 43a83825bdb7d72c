#include "tools/plexus-info/json_value.hpp"

#include <cstdlib>

namespace plexus::info {
namespace {

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  bool document(JsonValue *out) {
    if (!value(out, 0)) return false;
    skip_space();
    return pos_ == s_.size();
  }

 private:
  // Deep enough for any report; a bound keeps a hostile plugin's JSON from
  // exhausting the stack.
  static constexpr int max_depth = 64;

  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool eat(char c) {
    skip_space();
    if (pos_ >= s_.size() || s_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  bool value(JsonValue *out, int depth) {
    skip_space();
    if (pos_ >= s_.size() || depth > max_depth) return false;
    const char c = s_[pos_];
    if (c == '{') return object(out, depth);
    if (c == '[') return array(out, depth);
    if (c == '"') return out->kind = JsonValue::Kind::string, string(&out->text);
    if (literal("null")) return out->kind = JsonValue::Kind::null, true;
    if (literal("true")) return out->kind = JsonValue::Kind::boolean, out->boolean = true, out->text = "true", true;
    if (literal("false")) return out->kind = JsonValue::Kind::boolean, out->text = "false", true;
    return number(out);
  }

  bool object(JsonValue *out, int depth) {
    out->kind = JsonValue::Kind::object;
    ++pos_;
    if (eat('}')) return true;
    do {
      JsonField f;
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != '"' || !string(&f.key)) return false;
      if (!eat(':') || !value(&f.value, depth + 1)) return false;
      out->fields.push_back(std::move(f));
    } while (eat(','));
    return eat('}');
  }

  bool array(JsonValue *out, int depth) {
    out->kind = JsonValue::Kind::array;
    ++pos_;
    if (eat(']')) return true;
    do {
      out->items.emplace_back();
      if (!value(&out->items.back(), depth + 1)) return false;
    } while (eat(','));
    return eat(']');
  }

  bool number(JsonValue *out) {
    const size_t start = pos_;
    while (pos_ < s_.size() && std::string_view("+-0123456789.eE").find(s_[pos_]) != std::string_view::npos) ++pos_;
    out->kind = JsonValue::Kind::number;
    out->text = std::string(s_.substr(start, pos_ - start));
    char *end = nullptr;
    std::strtod(out->text.c_str(), &end);
    return !out->text.empty() && end == out->text.c_str() + out->text.size();
  }

  bool string(std::string *out) {
    ++pos_;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      const char c = s_[pos_++];
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        *out += c;
      } else if (!escape(out)) {
        return false;
      }
    }
    if (pos_ >= s_.size()) return false;
    ++pos_;
    return true;
  }

  bool escape(std::string *out) {
    if (pos_ >= s_.size()) return false;
    const char c = s_[pos_++];
    const std::string_view from = "\"\\/bfnrt", to = "\"\\/\b\f\n\r\t";
    if (const size_t k = from.find(c); k != std::string_view::npos) return *out += to[k], true;
    if (c != 'u' || pos_ + 4 > s_.size()) return false;
    const std::string hex(s_.substr(pos_, 4));
    char *end = nullptr;
    const unsigned long cp = std::strtoul(hex.c_str(), &end, 16);
    if (end != hex.c_str() + 4) return false;
    pos_ += 4;
    append_utf8(out, cp);
    return true;
  }

  // Surrogate pairs are not joined: the reports are ASCII, and this reader
  // only has to stay correct about structure.
  static void append_utf8(std::string *out, unsigned long cp) {
    if (cp < 0x80) {
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xC0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      *out += static_cast<char>(0xE0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

const JsonValue *JsonValue::get(std::string_view key) const {
  for (const auto &[name, v] : fields)
    if (name == key) return &v;
  return nullptr;
}

std::string JsonValue::as_text() const { return text; }

std::optional<JsonValue> parse_json(std::string_view text) {
  JsonValue v;
  if (!Parser(text).document(&v)) return std::nullopt;
  return v;
}

}  // namespace plexus::info
