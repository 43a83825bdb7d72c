// The collective options every shipped plugin honours the same way (DESIGN
// §3, PLX-P-24): which wire dtypes travel as asked, and the refusal of the
// rest, so a wire dtype is never ignored in silence by one plugin and
// refused by another.
#pragma once

#include <string_view>

#include "core/names.hpp"
#include "plexus/plugin.h"

namespace plexus::core {

// Whether a plugin that narrows float32 reductions to a half type carries
// the call's opts->wire_dtype as asked: -1 or the data's own dtype (nothing
// to do), a barrier (no data), or float32_on_half_wire.
constexpr bool wire_dtype_honoured(int32_t coll, int32_t dtype, int32_t wire) {
  return wire == -1 || wire == dtype || coll == PLX_COLL_BARRIER || float32_on_half_wire(coll, dtype, wire);
}

// PLX_ERR_UNSUPPORTED naming the wire dtype, the collective and its dtype,
// with `note` (", and not in this build ...") after the rule.
plx_status refuse_wire_dtype(std::string_view plugin, const plx_coll_desc &d, std::string_view note = {});

}  // namespace plexus::core
