#include "core/coll_options.hpp"

#include "core/status.hpp"

namespace plexus::core {

plx_status refuse_wire_dtype(std::string_view plugin, const plx_coll_desc &d, std::string_view note) {
  const char *wire = name_in(kDtypeNames, d.options->wire_dtype);
  const char *dtype = name_in(kDtypeNames, d.dtype);
  return fail(PLX_ERR_UNSUPPORTED, "{}: opts->wire_dtype {} for {} of {}: only float32 reductions (all_reduce, "
              "reduce, reduce_scatter) travel as float16 or bfloat16{}", plugin, wire ? wire : "?",
              coll_name(d.coll), dtype ? dtype : "?", note);
}

}  // namespace plexus::core
