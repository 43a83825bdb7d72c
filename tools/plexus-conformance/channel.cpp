#include "channel.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>

namespace plexus::conformance {

const char *verdict_name(Verdict v) {
  switch (v) {
    case Verdict::pass: return "PASS";
    case Verdict::fail: return "FAIL";
    default: return "SKIP";
  }
}

// One write per record: the pipe is this rank's alone, so records never
// interleave, and a rank killed mid-case has sent every finished record.
void Reporter::send(std::vector<std::string_view> fields) {
  std::string line;
  for (size_t k = 0; k < fields.size(); ++k) {
    if (k) line += '\t';
    for (char c : fields[k]) line += (c == '\t' || c == '\n' || c == '\r') ? ' ' : c;
  }
  line += '\n';
  for (size_t done = 0; done < line.size();) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the launcher is gone; PR_SET_PDEATHSIG ends us
    done += static_cast<size_t>(n);
  }
}

void Reporter::begin(std::string_view req, std::string_view group, std::string_view name) {
  send({"B", req, group, name});
}

void Reporter::result(std::string_view req, std::string_view group, std::string_view name, Verdict verdict,
                      std::string_view detail) {
  send({"R", req, group, name, verdict_name(verdict), detail});
}

void Reporter::hash(std::string_view group, std::string_view name, uint64_t hash) {
  const std::string text = fmt::format("{:016x}", hash);
  send({"H", group, name, text});
}

void Reporter::note(std::string_view text) { send({"N", text}); }
void Reporter::memory(std::string_view group, std::string_view memory) { send({"M", group, memory}); }
void Reporter::expect_death() { send({"K"}); }
void Reporter::end() { send({"E"}); }

void RecordParser::feed(const char *data, size_t bytes, std::vector<Record> *out) {
  pending_.append(data, bytes);
  size_t start = 0;
  for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
    Record record;
    for (size_t at = start;;) {
      const size_t tab = pending_.find('\t', at);
      const size_t stop = (tab == std::string::npos || tab > nl) ? nl : tab;
      record.emplace_back(pending_, at, stop - at);
      if (stop == nl) break;
      at = stop + 1;
    }
    out->push_back(std::move(record));
  }
  pending_.erase(0, start);
}

}  // namespace plexus::conformance
