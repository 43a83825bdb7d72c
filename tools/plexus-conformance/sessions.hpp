// The sessions a rank runs: each is one set of rank processes started by
// the launcher (launcher.hpp). Data groups share one session and one
// communicator; groups that kill ranks or must see leaks get fresh ones.
#pragma once

#include "rank.hpp"

namespace plexus::conformance {

void run_data_session(RankContext &ctx);  // data_session.cpp
void run_init_session(RankContext &ctx);  // error_sessions.cpp
void run_timeout_session(RankContext &ctx);
void run_kill_session(RankContext &ctx, bool during);
void run_abort_session(RankContext &ctx, bool from_thread);
void run_leak_session(RankContext &ctx);  // leak_session.cpp
void run_thread_session(RankContext &ctx);  // thread_session.cpp
void run_graph_session(RankContext &ctx);  // graph_session.cpp (CUDA), device_none.cpp
void run_topology_session(RankContext &ctx);  // topology_session.cpp
void run_memory_session(RankContext &ctx);  // memory_session.cpp
void run_queue_session(RankContext &ctx);  // queue_session.cpp
void run_group_session(RankContext &ctx);  // group_session.cpp
void run_registration_session(RankContext &ctx);  // registration_session.cpp

// The buffers the registration session registers: the kit's own of a kind
// the run tests, device memory first (where a backend's collectives
// take it, registration pays off); false when the plan has none.
bool registration_memory(const MemoryPlan &plan, MemSource *out);

// Argument checks of the loader, run inside the data session (arg_cases.cpp);
// `work` is the session's memory for the call that checks the ranks are
// still in step afterwards.
class Work;
void run_argument_cases(RankContext &ctx, plx_comm_h comm, const Work &work);

}  // namespace plexus::conformance
