#include "loader/tune.hpp"

#include <fmt/format.h>

#include <cmath>

#include "core/params.hpp"
#include "core/status.hpp"
#include "loader/spec.hpp"

namespace plexus::loader {
namespace {

// Index i names PLX_COLL_* value i; recv (8) is not a rule op of its own.
const char *const op_names[] = {"all_reduce", "reduce", "broadcast", "all_gather", "gather",
                                "reduce_scatter", "barrier", "p2p"};
constexpr int32_t op_name_count = sizeof(op_names) / sizeof(*op_names);

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    const size_t at = s.find(sep, start);
    parts.push_back(trim(s.substr(start, at - start)));
    if (at == std::string_view::npos) return parts;
    start = at + 1;
  }
}

// Where a parse is and how to say what went wrong there.
struct Where {
  std::string_view source;
  size_t item = 0;  // 1-based
  std::string_view text;

  plx_status reject(std::string_view why) const {
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{} item {} '{}': {}. {}", source, item, text, why,
                      tune_grammar);
  }
};

plx_status parse_op(const Where &w, std::string_view text, int32_t *op) {
  if (text == "*") return *op = route_op_any, PLX_OK;
  for (int32_t i = 0; i < op_name_count; ++i)
    if (text == op_names[i]) return *op = i, PLX_OK;
  if (text == "send" || text == "recv")
    return w.reject(fmt::format("'{}' cannot be routed alone: a send and its recv must meet on one "
                                "backend, so both are 'p2p'", text));
  return w.reject(fmt::format("'{}' is not an op", text));
}

plx_status parse_kind(const Where &w, std::string_view text, MemClass *kind) {
  if (text == "host") return *kind = MemClass::host, PLX_OK;
  if (text == "device") return *kind = MemClass::device, PLX_OK;
  return w.reject(fmt::format("'{}' is not a memory kind (host or device)", text));
}

plx_status parse_bound(const Where &w, std::string_view text, uint64_t fallback, uint64_t *out) {
  text = trim(text);
  if (text.empty()) return *out = fallback, PLX_OK;
  const auto value = core::parse_size(text);
  const bool upper = text.back() == 'K' || text.back() == 'M' || text.back() == 'G';
  const bool digits = text.find_first_not_of("0123456789") >= text.size() - (upper ? 1 : 0);
  if (!value || !digits || *value == size_unbounded)
    return w.reject(fmt::format("'{}' is not a size (digits with an optional K, M or G)", text));
  return *out = *value, PLX_OK;
}

plx_status parse_range(const Where &w, std::string_view text, TuneRule *rule) {
  if (text == "*") return PLX_OK;
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos || text.find('-', dash + 1) != std::string_view::npos)
    return w.reject(fmt::format("'{}' is not a range ('*' or LO-HI, either side may be empty)", text));
  if (plx_status s = parse_bound(w, text.substr(0, dash), 0, &rule->lo)) return s;
  if (plx_status s = parse_bound(w, text.substr(dash + 1), size_unbounded, &rule->hi)) return s;
  if (rule->lo >= rule->hi)
    return w.reject(fmt::format("the range '{}' is empty: it ends before it starts", text));
  return PLX_OK;
}

plx_status parse_backend(const Where &w, std::string_view text, std::string *label) {
  std::string name;
  int32_t instance = 0;
  if (!parse_backend_label(text, &name, &instance))
    return w.reject(fmt::format("'{}' is not a backend (a plugin name with an optional #1..#{})",
                                text, tune_max_instance));
  *label = std::string(text);
  return PLX_OK;
}

plx_status parse_rule(const Where &w, std::string_view text, TuneRule *rule) {
  const std::vector<std::string_view> parts = split(text, ':');
  if (parts.size() != 3)
    return w.reject(fmt::format("a rule has 3 parts separated by ':' (OP[@KIND]:RANGE:BACKEND), "
                                "this one {}", parts.size()));
  const size_t at = parts[0].find('@');
  if (plx_status s = parse_op(w, trim(parts[0].substr(0, at)), &rule->op)) return s;
  if (at != std::string_view::npos)
    if (plx_status s = parse_kind(w, trim(parts[0].substr(at + 1)), &rule->kind)) return s;
  if (plx_status s = parse_range(w, parts[1], rule)) return s;
  return parse_backend(w, parts[2], &rule->backend);
}

plx_status parse_item(const Where &w, TuneSpec *spec) {
  if (w.text.empty()) return w.reject("the item is empty (two ';' in a row, or one at an end)");
  if (w.text.front() == '+') {
    std::string label;
    if (plx_status s = parse_backend(w, trim(w.text.substr(1)), &label)) return s;
    spec->added.push_back(label);
    return PLX_OK;
  }
  TuneRule rule;
  if (plx_status s = parse_rule(w, w.text, &rule)) return s;
  spec->rules.push_back(std::move(rule));
  return PLX_OK;
}

}  // namespace

const char *const tune_grammar =
    "The grammar: items separated by ';', each a rule OP[@KIND]:RANGE:BACKEND or +BACKEND. OP is "
    "all_reduce, reduce, broadcast, all_gather, gather, reduce_scatter, barrier, p2p (send and "
    "recv) or '*'; KIND is host or device (default: both); RANGE is '*' or LO-HI in bytes with an "
    "optional K, M or G, LO included (default 0), HI excluded (default: no limit); BACKEND is a "
    "plugin name, '#N' (1..7) for another instance of it. The first rule that matches a call and "
    "whose backend can take it wins; +BACKEND adds a backend without a rule. Example: "
    "'all_reduce@device:-256K:p2p-tree;all_reduce@device:256K-:nccl'";

bool TuneRule::matches(int32_t call_op, MemClass call_kind, uint64_t bytes) const {
  if (op != route_op_any && op != call_op) return false;
  if (kind != MemClass::any && kind != call_kind) return false;
  return bytes >= lo && (hi == size_unbounded || bytes < hi);
}

bool parse_backend_label(std::string_view label, std::string *name, int32_t *instance) {
  const size_t hash = label.find('#');
  *name = std::string(label.substr(0, hash));
  *instance = 0;
  if (!is_valid_plugin_name(*name)) return false;
  if (hash == std::string_view::npos) return true;
  const std::string_view n = label.substr(hash + 1);
  if (n.size() != 1 || n[0] < '1' || n[0] > '0' + tune_max_instance) return false;
  *instance = n[0] - '0';
  return true;
}

plx_status parse_tune(std::string_view text, std::string_view source, TuneSpec *out) {
  if (text.size() > tune_max_chars)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{} is {} characters long; at most {} are read. {}",
                      source, text.size(), tune_max_chars, tune_grammar);
  const std::vector<std::string_view> items = split(text, ';');
  if (items.size() > tune_max_items)
    return core::fail(PLX_ERR_INVALID_ARGUMENT, "{} has {} items; at most {} are allowed. {}", source,
                      items.size(), tune_max_items, tune_grammar);
  TuneSpec spec;
  for (size_t i = 0; i < items.size(); ++i)
    if (plx_status s = parse_item(Where{source, i + 1, items[i]}, &spec)) return s;
  *out = std::move(spec);
  return PLX_OK;
}

const char *route_op_name(int32_t op) {
  return op >= 0 && op < op_name_count ? op_names[op] : "*";
}

const char *mem_class_name(MemClass kind) {
  return kind == MemClass::host ? "host" : kind == MemClass::device ? "device" : "*";
}

std::string size_text(uint64_t bytes) {
  if (bytes == size_unbounded) return "";
  for (const auto &[shift, suffix] : {std::pair{30, 'G'}, std::pair{20, 'M'}, std::pair{10, 'K'}})
    if (bytes != 0 && bytes % (uint64_t{1} << shift) == 0) return fmt::format("{}{}", bytes >> shift, suffix);
  return fmt::format("{}", bytes);
}

std::string tune_text(const TuneRule &r) {
  const std::string op = r.kind == MemClass::any ? route_op_name(r.op)
                                                 : fmt::format("{}@{}", route_op_name(r.op), mem_class_name(r.kind));
  const bool all = r.lo == 0 && r.hi == size_unbounded;
  const std::string range = all ? "*" : fmt::format("{}-{}", r.lo ? size_text(r.lo) : "", size_text(r.hi));
  return fmt::format("{}:{}:{}", op, range, r.backend);
}

std::string tune_text(const TuneSpec &spec) {
  std::vector<std::string> items;
  for (const std::string &a : spec.added) items.push_back("+" + a);
  for (const TuneRule &r : spec.rules) items.push_back(tune_text(r));
  return fmt::format("{}", fmt::join(items, ";"));
}

namespace {

size_t winner_at(const std::vector<double> &row, size_t previous, double keep_margin) {
  size_t best = 0;
  for (size_t m = 1; m < row.size(); ++m)
    if (row[m] < row[best]) best = m;
  if (previous < row.size() && std::isfinite(row[previous]) && row[previous] <= row[best] * keep_margin) return previous;
  return best;
}

uint64_t boundary(uint64_t below, uint64_t above) {
  return static_cast<uint64_t>(std::sqrt(static_cast<double>(below) * static_cast<double>(above)));
}

}  // namespace

std::vector<TuneRule> rules_from_times(MemClass kind, const std::vector<uint64_t> &sizes,
                                       const std::vector<std::string> &labels,
                                       const std::vector<double> &seconds, double keep_margin) {
  std::vector<TuneRule> rules;
  size_t previous = labels.size();
  for (size_t i = 0; i < sizes.size(); ++i) {
    const std::vector<double> row(seconds.begin() + i * labels.size(), seconds.begin() + (i + 1) * labels.size());
    const size_t w = winner_at(row, previous, keep_margin);
    if (!std::isfinite(row[w])) continue;  // nobody ran this size
    if (w == previous) continue;
    if (!rules.empty()) rules.back().hi = boundary(sizes[i - 1], sizes[i]);
    TuneRule r;
    r.op = PLX_COLL_ALL_REDUCE, r.kind = kind, r.backend = labels[w];
    r.lo = rules.empty() ? 0 : rules.back().hi;
    rules.push_back(r);
    previous = w;
  }
  return rules;
}

}  // namespace plexus::loader
