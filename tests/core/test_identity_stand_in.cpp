// core::stand_in_for_absent_rank without a GPU: which collectives take the
// flag, what the stand-in keeps of the call, and that a count of 0 makes no
// device buffer (IdentityBuffers on a GPU: test_identity_buffers.cpp).
#include <doctest/doctest.h>

#include <string>

#include "core/identity_buffers.hpp"
#include "core/status.hpp"

using plexus::core::IdentityBuffers;
using plexus::core::stand_in_for_absent_rank;

namespace {

plx_coll_desc desc_of(int32_t coll, uint64_t count, const plx_coll_options *options) {
  plx_coll_desc d{};
  d.struct_size = sizeof(d);
  d.coll = coll, d.count = count, d.dtype = PLX_FLOAT32, d.op = PLX_SUM, d.root = -1, d.peer = -1;
  d.send = nullptr, d.recv = reinterpret_cast<void *>(0x1000);
  d.options = options;
  return d;
}

}  // namespace

TEST_CASE("core.identity_stand_in.only_reductions_take_the_flag") {
  IdentityBuffers buffers(0);
  plx_coll_options options = PLX_COLL_OPTIONS_INIT, out{};
  options.flags = PLX_COLL_FLAG_NO_CONTRIBUTION;
  for (int32_t coll : {PLX_COLL_BROADCAST, PLX_COLL_ALL_GATHER, PLX_COLL_GATHER, PLX_COLL_BARRIER}) {
    plx_coll_desc stand_in{};
    const plx_coll_desc d = desc_of(coll, 16, &options);
    CHECK(stand_in_for_absent_rank(buffers, d, 2, "some-plugin", &out, &stand_in) == PLX_ERR_UNSUPPORTED);
    const std::string message = plexus::core::last_message();
    INFO(message);
    CHECK(message.find("some-plugin") != std::string::npos);
    CHECK(message.find("PLX_COLL_FLAG_NO_CONTRIBUTION") != std::string::npos);
  }
  CHECK(buffers.bytes_held() == 0);
}

TEST_CASE("core.identity_stand_in.zero_count_keeps_the_call_without_the_flag") {
  IdentityBuffers buffers(0);
  plx_coll_options options = PLX_COLL_OPTIONS_INIT, out{};
  options.flags = PLX_COLL_FLAG_NO_CONTRIBUTION;
  options.algorithm = PLX_ALGO_TWO_SHOT;
  for (int32_t coll : {PLX_COLL_ALL_REDUCE, PLX_COLL_REDUCE, PLX_COLL_REDUCE_SCATTER}) {
    plx_coll_desc d = desc_of(coll, 0, &options), stand_in{};
    d.send = reinterpret_cast<const void *>(0x2000);  // not read: the rank adds nothing
    REQUIRE(stand_in_for_absent_rank(buffers, d, 4, "some-plugin", &out, &stand_in) == PLX_OK);
    CHECK(stand_in.send == nullptr);
    CHECK(stand_in.recv == d.recv);
    CHECK(stand_in.coll == coll);
    CHECK(stand_in.options == &out);
    CHECK(out.flags == 0);
    CHECK(out.algorithm == PLX_ALGO_TWO_SHOT);
    CHECK(out.wire_dtype == options.wire_dtype);
  }
  CHECK(buffers.bytes_held() == 0);
}
