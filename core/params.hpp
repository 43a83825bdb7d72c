// Parsing of parameter values (PLEXUS_* variables): sizes with K/M/G
// suffixes, booleans, integers, fractions. Each returns nullopt for text that
// is not a valid value, so callers can name the variable in their error.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace plexus::core {

std::optional<uint64_t> parse_size(std::string_view text);  // "64K", "1M", "3G", "4096"
std::optional<int64_t> parse_int(std::string_view text);
std::optional<double> parse_double(std::string_view text);
std::optional<bool> parse_bool(std::string_view text);  // 0/1 true/false yes/no on/off

}  // namespace plexus::core
