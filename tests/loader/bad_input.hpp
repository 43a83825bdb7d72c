// The bad-input sweep (issue 10): every public function of plexus.h, and
// for each every class of invalid argument it can get, as rows of tables.
// A row calls the function once with one argument wrong and names the
// status plexus.h documents for it and the words the message must hold
// (the function and the argument). The world they run in is a 1-rank
// communicator of shm-native, and one of fixture-good for what shm-native
// does not implement (send, recv, groups), plus handles that were closed or
// destroyed and junk that never was a handle.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "plexus/plexus.h"

namespace plx_test {

struct World {
  World();
  ~World();
  World(const World &) = delete;
  World &operator=(const World &) = delete;

  plx_backend_h backend = nullptr;  // shm-native
  plx_comm_h comm = nullptr;        // 1 rank
  plx_backend_h fixture = nullptr;  // fixture-good, for send, recv and groups
  plx_comm_h fixture_comm = nullptr;
  plx_queue_h queue = nullptr;      // on comm, this rank writes
  void *block = nullptr;            // 256 bytes of comm's pool
  plx_unique_id id{};               // a fresh shm-native id
  // Handles that are no longer live, and memory that never was a handle.
  plx_backend_h closed_backend = nullptr;
  plx_comm_h destroyed_comm = nullptr;
  plx_queue_h destroyed_queue = nullptr;
  alignas(64) unsigned char junk[512] = {};
  float send[64] = {}, recv[64] = {};
};

// A row: the call, the status plexus.h documents, and the words the
// message of plx_last_error() must hold.
struct Row {
  const char *function;
  const char *argument_class;
  std::function<plx_status(World &)> call;
  plx_status want;
  std::vector<std::string> words;
};

std::vector<Row> library_and_backend_rows();
std::vector<Row> communicator_rows();
std::vector<Row> collective_rows();
std::vector<Row> memory_and_queue_rows();

}  // namespace plx_test
