// What the loader lends the plugin (plx_host_services): error messages,
// logging and parameters. A plugin never prints and never reads PLEXUS_*
// itself: the loader owns the log level, the log file and the parameter
// table that plexus-info --params shows (PLX-P-7, PLX-P-16).
#pragma once

#include <plexus/plugin.h>

#include <cstdint>

namespace example_shm {

// The name the plugin answers; its file must be libplexus-example-shm.so (PLX-P-3).
inline constexpr const char *kName = "example-shm";

// Kept from the query and every init; any thread may read it.
void set_services(const plx_host_services *services);
const plx_host_services *services();

// Sets this thread's plx_last_error() and returns status, so that
// `return fail(PLX_ERR_TIMEOUT, "...")` is the idiom. The message gets the
// plugin's name in front.
plx_status fail(plx_status status, const char *format, ...) __attribute__((format(printf, 2, 3)));
// One log line, formatted only when the level passes PLEXUS_LOG_LEVEL.
void log(plx_log_level level, const char *format, ...) __attribute__((format(printf, 2, 3)));

// A PLX_PARAM_SIZE parameter of the table in plugin.cpp ("1M", "64K"),
// clamped to [low, high]; a value that does not parse gives the fallback
// and a warning.
uint64_t param_bytes(const char *name, uint64_t fallback, uint64_t low, uint64_t high);

}  // namespace example_shm
