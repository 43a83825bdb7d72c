#include <doctest/doctest.h>

#include "core/coll_options.hpp"
#include "core/status.hpp"

using namespace plexus::core;

TEST_CASE("Core.CollOptions.wire_dtype_honoured_only_for_float32_reductions_on_a_half_type") {
  for (int32_t coll : {PLX_COLL_ALL_REDUCE, PLX_COLL_REDUCE, PLX_COLL_REDUCE_SCATTER}) {
    CHECK(wire_dtype_honoured(coll, PLX_FLOAT32, PLX_BFLOAT16));
    CHECK(wire_dtype_honoured(coll, PLX_FLOAT32, PLX_FLOAT16));
    CHECK(wire_dtype_honoured(coll, PLX_FLOAT32, -1));
    CHECK(wire_dtype_honoured(coll, PLX_FLOAT64, PLX_FLOAT64));  // the data's own
    CHECK_FALSE(wire_dtype_honoured(coll, PLX_FLOAT64, PLX_FLOAT32));
    CHECK_FALSE(wire_dtype_honoured(coll, PLX_FLOAT16, PLX_BFLOAT16));
    CHECK_FALSE(wire_dtype_honoured(coll, PLX_BFLOAT16, PLX_FLOAT32));  // wider is not carried either
  }
  for (int32_t coll : {PLX_COLL_BROADCAST, PLX_COLL_ALL_GATHER, PLX_COLL_GATHER, PLX_COLL_SEND}) {
    CHECK_FALSE(wire_dtype_honoured(coll, PLX_FLOAT32, PLX_BFLOAT16));
    CHECK(wire_dtype_honoured(coll, PLX_FLOAT32, PLX_FLOAT32));
  }
  CHECK(wire_dtype_honoured(PLX_COLL_BARRIER, -1, PLX_BFLOAT16));  // no data to carry
}

TEST_CASE("Core.CollOptions.refusal_names_the_wire_the_collective_and_the_dtype") {
  plx_coll_options options = PLX_COLL_OPTIONS_INIT;
  options.wire_dtype = PLX_FLOAT16;
  plx_coll_desc d{};
  d.coll = PLX_COLL_ALL_GATHER, d.dtype = PLX_FLOAT64, d.options = &options;
  CHECK(refuse_wire_dtype("demo", d, ", and not here") == PLX_ERR_UNSUPPORTED);
  CHECK(default_last_error() == "demo: opts->wire_dtype float16 for all_gather of float64: only float32 reductions "
                                "(all_reduce, reduce, reduce_scatter) travel as float16 or bfloat16, and not here");
}
