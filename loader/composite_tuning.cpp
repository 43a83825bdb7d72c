// The table of a composite communicator, settled collectively in
// plx_comm_init: PLEXUS_TUNE's rules when it has any; else the table cached
// in the tuning file for this machine and set of backends; else one
// measured now (all-reduce, in place, every size, every backend that could
// serve it) and cached. Rank 0 reads the file and hands its text to every
// rank, and the ranks' timings are merged (slowest rank) before a winner is
// picked, so every rank builds the same table. The agreeing goes through a
// host-memory member (shm-native); without one there is no measuring.
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "core/log.hpp"
#include "core/status.hpp"
#include "loader/composite.hpp"
#include "loader/composite_tuning.hpp"
#include "loader/services.hpp"

namespace plexus::loader {

plx_coll_desc desc_of(int32_t coll, void *buf, uint64_t count, int32_t dtype, int32_t op, int32_t root) {
  static const plx_coll_options defaults = PLX_COLL_OPTIONS_INIT;
  return plx_coll_desc{sizeof(plx_coll_desc), coll, buf, buf, count, nullptr, dtype, op, root, -1, &defaults, nullptr};
}

plx_status member_call(const CompositeComm &c, size_t m, const plx_coll_desc &d) {
  return PLX_MEMBER_CALL(c.backend->members[m], collective, c.comms[m], &d);
}

plx_status max_over_ranks(const CompositeComm &c, size_t host, std::vector<double> *values) {
  if (values->empty()) return PLX_OK;
  return member_call(c, host, desc_of(PLX_COLL_ALL_REDUCE, values->data(), values->size(), PLX_FLOAT64, PLX_MAX, -1));
}

namespace {

constexpr size_t text_bytes = 4096;  // a table's text as rank 0 hands it round

// The member that agrees the table: host memory, broadcast, all-reduce MAX of float64.
bool agreeing_member(const CompositeComm &c, size_t *out) {
  for (size_t m = 0; m < c.backend->members.size(); ++m) {
    const Member &member = c.backend->members[m];
    const plx_plugin_info &i = member.info();
    const bool colls = (i.capabilities & PLX_CAP_COLL(PLX_COLL_ALL_REDUCE)) && (i.capabilities & PLX_CAP_COLL(PLX_COLL_BROADCAST));
    if (member.takes(MemClass::host) && colls && (i.dtype_mask & PLX_BIT(PLX_FLOAT64)) && (i.reduce_op_mask & PLX_BIT(PLX_MAX)))
      return *out = m, true;
  }
  return false;
}

plx_status broadcast_text(const CompositeComm &c, size_t host, std::string *text) {
  std::vector<char> buf(text_bytes, '\0');
  if (c.rank == 0) std::memcpy(buf.data(), text->data(), std::min(text->size(), text_bytes - 1));
  if (plx_status s = member_call(c, host, desc_of(PLX_COLL_BROADCAST, buf.data(), text_bytes, PLX_UINT8, -1, 0))) return s;
  *text = std::string(buf.data());
  return PLX_OK;
}

std::string tuning_path() {
  const char *given = secure_env("PLEXUS_TUNING_FILE");
  if (given && *given) return std::string(given) == "none" ? "" : given;
  if (const char *cache = secure_env("XDG_CACHE_HOME"); cache && *cache) return fmt::format("{}/plexus/tuning.txt", cache);
  if (const char *home = secure_env("HOME"); home && *home) return fmt::format("{}/.cache/plexus/tuning.txt", home);
  return "";
}

// What a cached table is valid for: the backends and their versions, the
// ranks, and the machine as auto saw it.
std::string tuning_key(const CompositeComm &c) {
  const CompositeBackend &cb = *c.backend;
  std::string members;
  for (const Member &m : cb.members)
    members += fmt::format("{}{}={}.{}.{}", members.empty() ? "" : ",", m.label, m.info().version_major,
                           m.info().version_minor, m.info().version_patch);
  return fmt::format("v1 nranks={} gpus={} p2p={} nvlink={} members={}", c.size, cb.topology.gpu_count,
                     cb.topology.p2p_all_pairs, cb.topology.nvlink_all_pairs, members);
}

std::string read_cached(const std::string &path, const std::string &key) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 && line[key.size()] == '\t')
      return line.substr(key.size() + 1);
  return "";
}

void make_parent_folder(const std::string &path) {
  for (size_t at = path.find('/', 1); at != std::string::npos; at = path.find('/', at + 1))
    ::mkdir(path.substr(0, at).c_str(), 0700);  // EEXIST is fine; open reports the rest
}

// Replaces the key's line (other machines' lines stay), through a rename
// so a reader never sees half a file.
void write_cached(const std::string &path, const std::string &key, const std::string &table) {
  std::vector<std::string> lines = {"# plexus tuning file (docs/auto.md): <key> TAB <PLEXUS_TUNE rules>"};
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#' && line.compare(0, key.size() + 1, key + '\t') != 0) lines.push_back(line);
  lines.push_back(key + '\t' + table);
  make_parent_folder(path);
  const std::string tmp = fmt::format("{}.{}.tmp", path, ::getpid());
  std::ofstream out(tmp, std::ios::trunc);
  for (const std::string &line : lines) out << line << '\n';
  out.close();
  if (!out || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    core::log_warn("auto: cannot write the tuning file {}; the measured table is used but not kept", path);
  }
}

// The cached table's text as rank 0 read it, on every rank.
plx_status agree_cached(const CompositeComm &c, size_t host, const std::string &path, const std::string &key,
                        std::string *text) {
  if (c.rank == 0) *text = read_cached(path, key);
  return broadcast_text(c, host, text);
}

// Rules from a cached table; a damaged one is measured again (every rank
// saw the same text, so every rank decides the same).
bool cached_rules(const std::string &text, const std::string &path, bool report, std::vector<TuneRule> *rules) {
  TuneSpec spec;
  if (text.empty()) return false;
  if (parse_tune(text, "the tuning file", &spec) != PLX_OK || !spec.added.empty()) {
    if (report) core::log_warn("auto: the table in {} does not parse ({}); measuring again", path, plx_last_error());
    return false;
  }
  *rules = std::move(spec.rules);
  return true;
}

plx_status measured_or_cached(CompositeComm *c, size_t host, const std::vector<Sweep> &sweeps,
                              const std::string &path) {
  const std::string key = tuning_key(*c);
  std::string text;
  if (plx_status s = agree_cached(*c, host, path, key, &text)) return s;
  std::vector<TuneRule> rules;
  if (cached_rules(text, path, c->rank == 0, &rules)) {
    c->table_source = fmt::format("the tuning file {}", path);
  } else {
    if (plx_status s = measure_table(*c, host, sweeps, &rules)) return s;
    c->table_source = fmt::format("a measurement at the first communicator, kept in {}", path);
    if (c->rank == 0) write_cached(path, key, tune_text(TuneSpec{{}, rules}));
  }
  if (plx_status s = resolve_routes(c, rules, c->table_source)) return s;
  return PLX_OK;
}

// Why no table is measured, or "" when one is.
std::string no_measuring(const std::vector<Sweep> &sweeps, const std::string &path, bool host) {
  if (sweeps.empty()) return "no memory kind has two backends to choose between";
  if (path.empty()) return "PLEXUS_TUNING_FILE=none (or no home folder for the default file)";
  if (!host) return "no host-memory backend to agree a measurement through";
  return "";
}

}  // namespace

plx_status settle_table(CompositeComm *c) {
  const TuneSpec &tune = c->backend->tune;
  plx_status s = PLX_OK;
  if (!tune.rules.empty()) {
    c->table_source = "PLEXUS_TUNE";
    s = resolve_routes(c, tune.rules, "PLEXUS_TUNE");
  } else {
    const std::vector<Sweep> sweeps = sweeps_of(*c);
    const std::string path = tuning_path();
    size_t host = 0;
    const std::string why_not = no_measuring(sweeps, path, agreeing_member(*c, &host));
    if (why_not.empty()) s = measured_or_cached(c, host, sweeps, path);
    else c->table_source = "member order only: " + why_not;
  }
  add_member_order(c);
  return s;
}

}  // namespace plexus::loader
