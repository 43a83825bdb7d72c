// What a rank tells the launcher, one tab-separated line per record over a
// pipe of its own:
//   B  req group case           a case begins (the launcher blames it if
//                                the rank dies or hangs before R)
//   R  req group case verdict detail
//   H  group case hash           output hash, compared across ranks
//   N  text                      a note for the report
//   M  group memory              the memory a group's cases use ("device pool")
//   K                            this rank is about to kill itself
//   E                            the rank finished normally
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace plexus::conformance {

enum class Verdict { pass, fail, skip };

const char *verdict_name(Verdict v);

// Rank side.
class Reporter {
 public:
  explicit Reporter(int fd) : fd_(fd) {}
  void begin(std::string_view req, std::string_view group, std::string_view name);
  void result(std::string_view req, std::string_view group, std::string_view name, Verdict verdict,
              std::string_view detail = {});
  void hash(std::string_view group, std::string_view name, uint64_t hash);
  void note(std::string_view text);
  void memory(std::string_view group, std::string_view memory);
  void expect_death();
  void end();

 private:
  void send(std::vector<std::string_view> fields);
  int fd_;
};

// Launcher side: one record split into its fields (fields[0] is the kind).
using Record = std::vector<std::string>;

// Cuts a byte stream into records; keeps an incomplete last line.
class RecordParser {
 public:
  void feed(const char *data, size_t bytes, std::vector<Record> *out);

 private:
  std::string pending_;
};

}  // namespace plexus::conformance
