#include "core/gpu_nvml.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

namespace plexus::core {
namespace {

// The slice of nvml.h used here, as libnvidia-ml.so.1 defines it (the _v2
// entry points exist since driver 418; enums are int-sized C enums).
using nvmlReturn_t = int;
struct nvmlDevice_st;
using nvmlDevice_t = nvmlDevice_st *;
using nvmlEnableState_t = int;
using nvmlIntNvLinkDeviceType_t = int;
struct nvmlPciInfo_t {
  char busIdLegacy[16];
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;
  unsigned int pciSubSystemId;
  char busId[32];
};
constexpr nvmlReturn_t NVML_SUCCESS = 0;
constexpr nvmlEnableState_t NVML_FEATURE_ENABLED = 1;
constexpr unsigned NVML_NVLINK_MAX_LINKS = 18;
constexpr nvmlIntNvLinkDeviceType_t NVML_NVLINK_DEVICE_TYPE_GPU = 0;
constexpr nvmlIntNvLinkDeviceType_t NVML_NVLINK_DEVICE_TYPE_IBMNPU = 1;
constexpr nvmlIntNvLinkDeviceType_t NVML_NVLINK_DEVICE_TYPE_SWITCH = 2;
constexpr unsigned NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE = 80;

struct NvmlApi {
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*shutdown)() = nullptr;
  nvmlReturn_t (*driver_version)(char *, unsigned) = nullptr;
  nvmlReturn_t (*handle_by_bus_id)(const char *, nvmlDevice_t *) = nullptr;
  nvmlReturn_t (*link_state)(nvmlDevice_t, unsigned, nvmlEnableState_t *) = nullptr;
  nvmlReturn_t (*remote_pci)(nvmlDevice_t, unsigned, nvmlPciInfo_t *) = nullptr;
  // Optional: older drivers lack them, and the answer is only less precise.
  nvmlReturn_t (*link_version)(nvmlDevice_t, unsigned, unsigned *) = nullptr;
  nvmlReturn_t (*remote_type)(nvmlDevice_t, unsigned, nvmlIntNvLinkDeviceType_t *) = nullptr;
  const char *(*error_string)(nvmlReturn_t) = nullptr;
};

template <typename Fn>
bool load_symbol(void *library, const char *name, Fn **fn) {
  *fn = reinterpret_cast<Fn *>(dlsym(library, name));
  return *fn != nullptr;
}

// NVML loaded and initialised for the object's lifetime; error() says why
// not when it could not be.
class NvmlSession {
 public:
  NvmlSession() {
    library_ = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (library_ == nullptr) {
      const char *why = dlerror();
      error_ = fmt::format("not used: libnvidia-ml.so.1 could not be loaded ({})", why ? why : "no reason given");
      return;
    }
    if (const char *missing = load_symbols(); missing != nullptr) {
      error_ = fmt::format("not used: libnvidia-ml.so.1 has no {}", missing);
      return;
    }
    const nvmlReturn_t rc = api_.init();
    if (rc != NVML_SUCCESS) error_ = fmt::format("not used: nvmlInit_v2 failed: {}", describe(rc));
    initialised_ = rc == NVML_SUCCESS;
  }
  ~NvmlSession() {
    if (initialised_) (void)api_.shutdown();
    if (library_ != nullptr) dlclose(library_);
  }
  NvmlSession(const NvmlSession &) = delete;
  NvmlSession &operator=(const NvmlSession &) = delete;

  const std::string &error() const { return error_; }
  const NvmlApi &api() const { return api_; }
  std::string describe(nvmlReturn_t rc) const {
    const char *text = api_.error_string != nullptr ? api_.error_string(rc) : nullptr;
    return text != nullptr ? fmt::format("{} (NVML error {})", text, rc) : fmt::format("NVML error {}", rc);
  }

 private:
  // The first required symbol that is missing, nullptr when all are there.
  const char *load_symbols() {
    (void)load_symbol(library_, "nvmlErrorString", &api_.error_string);
    (void)load_symbol(library_, "nvmlDeviceGetNvLinkVersion", &api_.link_version);
    (void)load_symbol(library_, "nvmlDeviceGetNvLinkRemoteDeviceType", &api_.remote_type);
    if (!load_symbol(library_, "nvmlInit_v2", &api_.init)) return "nvmlInit_v2";
    if (!load_symbol(library_, "nvmlShutdown", &api_.shutdown)) return "nvmlShutdown";
    if (!load_symbol(library_, "nvmlSystemGetDriverVersion", &api_.driver_version)) return "nvmlSystemGetDriverVersion";
    if (!load_symbol(library_, "nvmlDeviceGetHandleByPciBusId_v2", &api_.handle_by_bus_id))
      return "nvmlDeviceGetHandleByPciBusId_v2";
    if (!load_symbol(library_, "nvmlDeviceGetNvLinkState", &api_.link_state)) return "nvmlDeviceGetNvLinkState";
    if (!load_symbol(library_, "nvmlDeviceGetNvLinkRemotePciInfo_v2", &api_.remote_pci))
      return "nvmlDeviceGetNvLinkRemotePciInfo_v2";
    return nullptr;
  }

  void *library_ = nullptr;
  bool initialised_ = false;
  NvmlApi api_;
  std::string error_;
};

NvlinkRemote remote_kind(const NvmlApi &api, nvmlDevice_t device, unsigned link) {
  nvmlIntNvLinkDeviceType_t type = -1;
  if (api.remote_type == nullptr || api.remote_type(device, link, &type) != NVML_SUCCESS) return NvlinkRemote::unknown;
  if (type == NVML_NVLINK_DEVICE_TYPE_GPU) return NvlinkRemote::gpu;
  if (type == NVML_NVLINK_DEVICE_TYPE_SWITCH) return NvlinkRemote::nvswitch;
  return type == NVML_NVLINK_DEVICE_TYPE_IBMNPU ? NvlinkRemote::other : NvlinkRemote::unknown;
}

// A link that is absent, down or not reported (NOT_SUPPORTED past the
// GPU's link count, or on a GPU without NVLink) is simply not listed.
std::vector<NvlinkEndpoint> active_links(const NvmlApi &api, nvmlDevice_t device) {
  std::vector<NvlinkEndpoint> links;
  for (unsigned link = 0; link < NVML_NVLINK_MAX_LINKS; ++link) {
    nvmlEnableState_t state = 0;
    if (api.link_state(device, link, &state) != NVML_SUCCESS || state != NVML_FEATURE_ENABLED) continue;
    nvmlPciInfo_t pci{};
    if (api.remote_pci(device, link, &pci) != NVML_SUCCESS) continue;
    NvlinkEndpoint end;
    pci.busId[sizeof(pci.busId) - 1] = '\0';
    if (!parse_pci_address(pci.busId, &end.remote)) end.remote = PciAddress{pci.domain, pci.bus, pci.device, 0};
    end.kind = remote_kind(api, device, link);
    unsigned version = 0;
    if (api.link_version != nullptr && api.link_version(device, link, &version) == NVML_SUCCESS)
      end.version = nvlink_generation(version);
    links.push_back(end);
  }
  return links;
}

std::string driver_description(const NvmlSession &nvml) {
  char version[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE] = {};
  if (nvml.api().driver_version(version, sizeof(version)) != NVML_SUCCESS) return "NVML (driver version unknown)";
  version[sizeof(version) - 1] = '\0';
  return fmt::format("NVML {}", version);
}

}  // namespace

NvmlLinks read_nvlinks(const std::vector<PciAddress> &addresses) {
  NvmlLinks result;
  result.active.resize(addresses.size());
  const NvmlSession nvml;
  if (!nvml.error().empty()) {
    result.description = nvml.error();
    return result;
  }
  for (size_t i = 0; i < addresses.size(); ++i) {
    nvmlDevice_t device = nullptr;
    const std::string bus_id = sysfs_pci_name(addresses[i]);
    const nvmlReturn_t rc = nvml.api().handle_by_bus_id(bus_id.c_str(), &device);
    if (rc != NVML_SUCCESS) {
      result.description = fmt::format("not used: NVML does not know GPU {} ({}): {}", i, bus_id, nvml.describe(rc));
      result.active.assign(addresses.size(), {});
      return result;
    }
    result.active[i] = active_links(nvml.api(), device);
  }
  result.used = true;
  result.description = driver_description(nvml);
  return result;
}

}  // namespace plexus::core
