// plexus-info: what this machine's plexus is made of. Prints the version,
// the plugin search path and every plugin found, the load report of opening
// a backend, and the topology (DESIGN §6). A backend that fails to open is
// reported, not fatal: finding out why is what the tool is for.
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "plexus/plexus.h"
#include "plexus_config.h"
#include "tools/plexus-info/gather.hpp"
#include "tools/plexus-info/print.hpp"

namespace {

constexpr const char *usage_text =
    "usage: plexus-info [--json] [--params] [--backend SPEC]\n"
    "\n"
    "  (no option)     version, plugin search path, plugins, load report, host and\n"
    "                  GPU topology (GPUs, NVLink, PCIe paths, checked peer access)\n"
    "  --json          the same as one JSON object\n"
    "  --params        every PLEXUS_* parameter: owner, type, default, value, help\n"
    "                  (with --json: as a JSON array)\n"
    "  --backend SPEC  open SPEC instead of PLEXUS_BACKEND (grammar: name[,name...],\n"
    "                  /abs/path/libplexus-x.so, auto, ^name[,name...])\n"
    "  --version       print the version and exit\n"
    "  -h, --help      print this help and exit\n";

struct Options {
  bool json = false;
  bool params = false;
  std::optional<std::string> backend;
};

int usage_error(const std::string &message) {
  std::fprintf(stderr, "plexus-info: %s\n%s", message.c_str(), usage_text);
  return 2;
}

// Returns -1 to go on, else the exit status (after --help, --version or a
// bad argument).
int parse(int argc, char **argv, Options *o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") o->json = true;
    else if (a == "--params") o->params = true;
    else if (a == "--backend" && i + 1 < argc) o->backend = argv[++i];
    else if (a.rfind("--backend=", 0) == 0) o->backend = a.substr(std::strlen("--backend="));
    else if (a == "--backend") return usage_error("--backend needs a SPEC");
    else if (a == "-h" || a == "--help") return std::printf("%s", usage_text), 0;
    else if (a == "--version") return std::printf("plexus-info %s, libplexus %s\n", PLEXUS_VERSION, plx_version_string()), 0;
    else return usage_error("unknown option '" + a + "'");
  }
  return -1;
}

int run(const Options &o) {
  const std::optional<std::string> plugins = plexus::info::describe_plugins(o.json || o.params ? PLX_FORMAT_JSON : PLX_FORMAT_TEXT);
  if (!plugins) return 1;
  if (o.params) return plexus::info::print_params(*plugins, o.json) ? 0 : 1;
  const plexus::info::Opened opened = plexus::info::open_and_probe(o.backend ? o.backend->c_str() : nullptr);
  const plexus::info::HostPart host = plexus::info::probe_host();
  const plexus::info::GpuPart gpus = plexus::info::probe_gpus();
  if (o.json) plexus::info::print_json(*plugins, opened, host, gpus);
  else plexus::info::print_text(*plugins, opened, host, gpus);
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  Options o;
  const int done = parse(argc, argv, &o);
  return done >= 0 ? done : run(o);
}
