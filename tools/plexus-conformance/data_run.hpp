// Runs one data case on this rank and reports it (PLX-P-8).
#pragma once

#include "data_cases.hpp"
#include "rank.hpp"

namespace plexus::conformance {

void run_data_case(RankContext &ctx, plx_comm_h comm, const DataCase &c);

}  // namespace plexus::conformance
