// The host services the loader hands every plugin (and installs for its own
// copy of core): logging with PLEXUS_LOG_LEVEL / PLEXUS_LOG_FILE, the error
// setter behind plx_last_error(), and the parameter lookup over the declared
// tables (the loader's own and each plugin's).
#pragma once

#include <string>
#include <vector>

#include "plexus/plugin.h"

namespace plexus::loader {

const plx_host_services *host_services();
const plx_host_info *host_info();

// Makes a plugin's parameter table known to param_get (defaults) and to
// plx_plugins_describe. Idempotent per plugin name.
void declare_plugin_params(const char *plugin, const plx_param_decl *params, uint32_t count);

// "PLEXUS_SHM_NATIVE_SLOT_BYTES" for ("shm-native", "SLOT_BYTES"); plugin
// nullptr gives "PLEXUS_<param>".
std::string param_env_name(const char *plugin, const char *param);

// The loader's own parameters (PLEXUS_TIMEOUT_MS, ...).
const std::vector<plx_param_decl> &loader_params();

// Resolved timeouts: PLEXUS_TIMEOUT_MS and PLEXUS_INIT_TIMEOUT_MS.
int32_t default_timeout_ms();
int32_t default_init_timeout_ms();

// Secure lookup of an environment variable (secure_getenv): nullptr when
// unset or when the process runs with elevated privileges.
const char *secure_env(const char *name);

}  // namespace plexus::loader
