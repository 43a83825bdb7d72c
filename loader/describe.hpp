// plx_plugins_describe: every plugin in the search path, queried but not
// initialised, with its parameters; and the names of capability bits.
#pragma once

#include <string>
#include <vector>

#include "plexus/types.h"

namespace plexus::loader {

std::string describe_plugins(plx_format format);

// "all_reduce", "split", ... for the bits set in `caps`.
std::vector<std::string> capability_names(uint64_t caps);

// Names of the set bits of a PLX_BIT mask over an enum with `count` values,
// named by `name_of`.
std::vector<std::string> mask_names(uint32_t mask, int32_t count, const char *(*name_of)(int32_t));

}  // namespace plexus::loader
