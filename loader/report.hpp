// The load report: what plx_backend_open tried and why each candidate won or
// lost (DESIGN §3, PLX-L-7). Kept per backend and, for failed opens, per
// thread.
#pragma once

#include <string>
#include <vector>

#include "plexus/types.h"

namespace plexus::loader {

struct Candidate {
  std::string name;       // as asked for or as found
  std::string path;       // library path, empty if none was found
  std::string abi;        // "1.0" as answered, empty if never asked
  std::string version;    // plugin version, empty if unknown
  std::string build_info;
  std::string stage;      // how far it got: search, dlopen, query, validate, init, ok
  plx_status status = PLX_OK;
  std::string reason;     // why it was rejected; empty for the winner
  bool chosen = false;
};

inline Candidate make_candidate(std::string name, std::string path) {
  Candidate c;
  c.name = std::move(name);
  c.path = std::move(path);
  return c;
}

struct LoadReport {
  std::string spec;                      // the spec as given
  std::string spec_source;               // "PLEXUS_BACKEND", "argument", "default"
  std::vector<std::string> search_dirs;
  std::vector<Candidate> candidates;
  std::string decision;                  // one sentence: what was chosen and why
  plx_status status = PLX_OK;
  // auto only: the backends it chose (several make its composite) and why.
  std::vector<std::string> auto_members;
  std::string auto_reason;

  std::string text() const;
  std::string json() const;
};


}  // namespace plexus::loader
