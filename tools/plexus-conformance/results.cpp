#include "results.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace plexus::conformance {

Verdict CaseResult::verdict() const {
  if (failed) return Verdict::fail;
  return passed ? Verdict::pass : Verdict::skip;
}

Verdict GroupResult::verdict() const {
  bool any_pass = false;
  for (const CaseResult &c : cases) {
    if (c.verdict() == Verdict::fail) return Verdict::fail;
    any_pass |= c.verdict() == Verdict::pass;
  }
  return any_pass ? Verdict::pass : Verdict::skip;
}

GroupResult &Results::group_of(std::string_view group) {
  auto g = group_index_.find(group);
  if (g == group_index_.end()) {
    g = group_index_.emplace(std::string(group), groups_.size()).first;
    groups_.push_back(GroupResult{std::string(group), {}, {}, {}});
  }
  return groups_[g->second];
}

CaseResult &Results::case_of(std::string_view req, std::string_view group, std::string_view name) {
  GroupResult &gr = group_of(group);
  auto c = gr.index.find(name);
  if (c == gr.index.end()) {
    c = gr.index.emplace(std::string(name), gr.cases.size()).first;
    CaseResult fresh;
    fresh.name = name, fresh.requirement = req;
    gr.cases.push_back(std::move(fresh));
  }
  return gr.cases[c->second];
}

void Results::fail_case(CaseResult &c, int32_t rank, std::string_view detail) {
  if (c.failed++ == 0) c.detail = rank >= 0 ? fmt::format("rank {}: {}", rank, detail) : std::string(detail);
}

void Results::on_record(int32_t rank, const Record &r) {
  const std::string &kind = r[0];
  if (kind == "B" && r.size() >= 4) {
    case_of(r[1], r[2], r[3]);
    open_[rank].push_back({r[1], r[2], r[3]});
  } else if (kind == "R" && r.size() >= 6) {
    CaseResult &c = case_of(r[1], r[2], r[3]);
    if (r[4] == "FAIL")
      fail_case(c, rank, r[5]);
    else if (r[4] == "PASS")
      ++c.passed;
    else if (c.skipped++ == 0)
      c.detail = r[5];
    auto &open = open_[rank];
    for (auto it = open.rbegin(); it != open.rend(); ++it)
      if ((*it)[1] == r[2] && (*it)[2] == r[3]) {
        open.erase(std::next(it).base());
        break;
      }
  } else if (kind == "H" && r.size() >= 4) {
    case_of("PLX-P-8", r[1], r[2]).hashes[rank] = std::stoull(r[3], nullptr, 16);
  } else if (kind == "N" && r.size() >= 2) {
    note(r[1]);
  } else if (kind == "M" && r.size() >= 3) {
    group_of(r[1]).memory = r[2];
  }
}

bool Results::abandon(int32_t rank, const std::string &why) {
  auto it = open_.find(rank);
  if (it == open_.end() || it->second.empty()) return false;
  const std::vector<std::string> open = it->second.back();
  open_.erase(it);
  fail_case(case_of(open[0], open[1], open[2]), rank, why);
  return true;
}

void Results::add(std::string_view req, std::string_view group, std::string_view name, Verdict verdict,
                  std::string_view detail) {
  CaseResult &c = case_of(req, group, name);
  if (verdict == Verdict::fail)
    fail_case(c, -1, detail);
  else if (verdict == Verdict::pass)
    ++c.passed;
  else if (c.skipped++ == 0)
    c.detail = detail;
}

void Results::note(const std::string &text) {
  if (std::find(notes_.begin(), notes_.end(), text) == notes_.end()) notes_.push_back(text);
}

void Results::check_hashes() {
  for (GroupResult &g : groups_)
    for (CaseResult &c : g.cases) {
      if (c.hashes.size() < 2) continue;
      const auto &[first_rank, first_hash] = *c.hashes.begin();
      for (const auto &[rank, hash] : c.hashes)
        if (hash != first_hash) {
          c.requirement = "PLX-P-8";
          fail_case(c, -1,
                    fmt::format("rank {}'s output differs bitwise from rank {}'s (every rank "
                                "must get bit-identical results)",
                                rank, first_rank));
          break;
        }
      c.hashes.clear();
    }
}

// "[PLX-P-24] [PLX-P-8]": every requirement a failing case of g broke, in
// the order of its first such case.
static std::string failed_requirements(const GroupResult &g) {
  std::vector<std::string> seen;
  for (const CaseResult &c : g.cases)
    if (c.failed > 0 && std::find(seen.begin(), seen.end(), c.requirement) == seen.end())
      seen.push_back(c.requirement);
  std::string text;
  for (const std::string &r : seen) text += (text.empty() ? "[" : " [") + r + "]";
  return text;
}

// "FAIL  all_reduce bfloat16 sum  [PLX-P-8] 3 of 20 cases: size 7 ...: rank 1: element 2 ..."
static std::string group_line(const GroupResult &g) {
  const Verdict v = g.verdict();
  const size_t n = g.cases.size();
  if (v == Verdict::skip)
    return fmt::format("SKIP  {}  ({})", g.name, n ? g.cases.front().detail : "no cases");
  if (v == Verdict::pass) return fmt::format("PASS  {}  ({} case{})", g.name, n, n == 1 ? "" : "s");
  const auto bad = std::find_if(g.cases.begin(), g.cases.end(), [](auto &c) { return c.failed > 0; });
  const auto failed = std::count_if(g.cases.begin(), g.cases.end(), [](auto &c) { return c.failed > 0; });
  return fmt::format("FAIL  {}  {} {} of {} cases: {}: {}", g.name, failed_requirements(g), failed, n, bad->name,
                     bad->detail);
}

int Results::print(std::FILE *out) const {
  int passed = 0, failed = 0;
  for (const GroupResult &g : groups_) {
    fmt::print(out, "{}\n", group_line(g));
    passed += g.verdict() == Verdict::pass;
    failed += g.verdict() == Verdict::fail;
  }
  for (const std::string &n : notes_) fmt::print(out, "NOTE  {}\n", n);
  fmt::print(out, "{} passed, {} failed\n", passed, failed);
  std::fflush(out);
  return failed;
}

std::string json_quote(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\')
      out += '\\', out += c;
    else if (static_cast<unsigned char>(c) < 0x20)
      out += fmt::format("\\u{:04x}", c);
    else
      out += c;
  }
  return out + "\"";
}

static std::string case_json(const CaseResult &c) {
  return fmt::format(
      "{{\"name\":{},\"requirement\":{},\"status\":\"{}\",\"ranks_passed\":{},"
      "\"ranks_failed\":{},\"detail\":{}}}",
      json_quote(c.name), json_quote(c.requirement), verdict_name(c.verdict()), c.passed, c.failed,
      json_quote(c.detail));
}

bool Results::write_json(const std::string &path, const std::string &header) const {
  std::FILE *f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  int passed = 0, failed = 0;
  fmt::print(f, "{{{},\n\"groups\":[", header);
  for (size_t k = 0; k < groups_.size(); ++k) {
    const GroupResult &g = groups_[k];
    passed += g.verdict() == Verdict::pass, failed += g.verdict() == Verdict::fail;
    fmt::print(f, "{}\n{{\"name\":{},\"status\":\"{}\",\"memory\":{},\"cases\":[", k ? "," : "",
               json_quote(g.name), verdict_name(g.verdict()), g.memory.empty() ? "null" : json_quote(g.memory));
    for (size_t j = 0; j < g.cases.size(); ++j)
      fmt::print(f, "{}\n  {}", j ? "," : "", case_json(g.cases[j]));
    fmt::print(f, "]}}");
  }
  fmt::print(f, "],\n\"notes\":[");
  for (size_t k = 0; k < notes_.size(); ++k) fmt::print(f, "{}{}", k ? "," : "", json_quote(notes_[k]));
  fmt::print(f, "],\n\"passed\":{},\"failed\":{}}}\n", passed, failed);
  return std::fclose(f) == 0;
}

}  // namespace plexus::conformance
