#include "elf_exports.hpp"

#include <elf.h>

#include <cstring>
#include <fstream>
#include <iterator>

namespace plexus::conformance {
namespace {

template <typename T>
bool read_at(const std::vector<char> &file, uint64_t offset, T *out) {
  if (offset > file.size() || file.size() - offset < sizeof(T)) return false;
  std::memcpy(out, file.data() + offset, sizeof(T));
  return true;
}

bool exported(const Elf64_Sym &sym) {
  const unsigned bind = ELF64_ST_BIND(sym.st_info), vis = ELF64_ST_VISIBILITY(sym.st_other);
  // Version definitions are absolute symbols, not code or data of the plugin.
  return (bind == STB_GLOBAL || bind == STB_WEAK) && sym.st_shndx != SHN_UNDEF && sym.st_shndx != SHN_ABS &&
         (vis == STV_DEFAULT || vis == STV_PROTECTED);
}

}  // namespace

std::optional<std::vector<std::string>> elf_exports(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Elf64_Ehdr eh;
  if (!read_at(file, 0, &eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64)
    return std::nullopt;
  for (uint16_t k = 0; k < eh.e_shnum; ++k) {
    Elf64_Shdr dynsym, strtab;
    if (!read_at(file, eh.e_shoff + uint64_t{k} * eh.e_shentsize, &dynsym)) return std::nullopt;
    if (dynsym.sh_type != SHT_DYNSYM) continue;
    if (!read_at(file, eh.e_shoff + uint64_t{dynsym.sh_link} * eh.e_shentsize, &strtab)) return std::nullopt;
    std::vector<std::string> names;
    for (uint64_t at = 0; at + sizeof(Elf64_Sym) <= dynsym.sh_size; at += sizeof(Elf64_Sym)) {
      Elf64_Sym sym;
      if (!read_at(file, dynsym.sh_offset + at, &sym)) return std::nullopt;
      const uint64_t name_at = strtab.sh_offset + sym.st_name;
      if (exported(sym) && name_at < file.size())
        names.emplace_back(file.data() + name_at, ::strnlen(file.data() + name_at, file.size() - name_at));
    }
    return names;
  }
  return std::vector<std::string>{};
}

}  // namespace plexus::conformance
