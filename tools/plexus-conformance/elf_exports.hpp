// PLX-P-1: the dynamic symbols a plugin library defines and exports, read
// from its ELF file (.dynsym), so the kit needs no nm or readelf.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace plexus::conformance {

// Defined global or weak symbols of default or protected visibility;
// nullopt when the file is not a 64-bit ELF library this can read.
std::optional<std::vector<std::string>> elf_exports(const std::string &path);

}  // namespace plexus::conformance
