// The launcher's view of a run: every case of every group, merged over the
// ranks that reported it, printed one line per group and written as JSON.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "channel.hpp"

namespace plexus::conformance {

struct CaseResult {
  std::string name, requirement;
  int32_t passed = 0, failed = 0, skipped = 0;  // rank reports
  std::string detail;  // the first failure, or a skip's reason
  std::map<int32_t, uint64_t> hashes;  // output hash per rank
  Verdict verdict() const;
};

struct GroupResult {
  std::string name;
  std::string memory;  // the memory kind its cases use, where a rank said (M records)
  std::vector<CaseResult> cases;
  std::map<std::string, size_t, std::less<>> index;
  Verdict verdict() const;
};

class Results {
 public:
  // A record from `rank` (B, R, H, N, M; the launcher handles K and E).
  void on_record(int32_t rank, const Record &record);
  // `rank` stopped inside the case it began last (died, or was killed by
  // the launcher): that case fails with `why`. False when it was in none.
  bool abandon(int32_t rank, const std::string &why);
  // Forgets the cases `rank` left open (it died as the case intended).
  void close_open(int32_t rank) { open_.erase(rank); }
  // A result of the launcher's own (shared memory, stdout).
  void add(std::string_view req, std::string_view group, std::string_view name, Verdict verdict,
           std::string_view detail = {});
  void note(const std::string &text);
  // Every rank that hashed a case's output must have the same bits.
  void check_hashes();

  // Group lines, notes and the final "N passed, M failed"; returns M.
  int print(std::FILE *out) const;
  // The whole report as JSON; `header` is a JSON object's members.
  bool write_json(const std::string &path, const std::string &header) const;

 private:
  GroupResult &group_of(std::string_view group);
  CaseResult &case_of(std::string_view req, std::string_view group, std::string_view name);
  void fail_case(CaseResult &c, int32_t rank, std::string_view detail);

  std::vector<GroupResult> groups_;
  std::map<std::string, size_t, std::less<>> group_index_;
  // Per rank, the cases begun and not finished (they may nest): req, group, name.
  std::map<int32_t, std::vector<std::vector<std::string>>> open_;
  std::vector<std::string> notes_;
};

// "\"text\"" with JSON escapes.
std::string json_quote(std::string_view text);

}  // namespace plexus::conformance
