#include <doctest/doctest.h>

#include <cerrno>

#include "core/status.hpp"

using namespace plexus::core;

TEST_CASE("Core.Status.fail_sets_message_and_returns_status") {
  CHECK(fail(PLX_ERR_TIMEOUT, "rank {} missing", 3) == PLX_ERR_TIMEOUT);
  CHECK(default_last_error() == "rank 3 missing");
}

TEST_CASE("Core.Status.errno_maps_to_system_or_memory") {
  CHECK(fail_errno(EACCES, "shm_open /x") == PLX_ERR_SYSTEM);
  CHECK(default_last_error().find("shm_open /x: Permission denied") == 0);
  CHECK(fail_errno(ENOSPC, "ftruncate") == PLX_ERR_OUT_OF_MEMORY);
}

TEST_CASE("Core.Status.every_code_has_a_name") {
  for (plx_status s = PLX_ERR_INTERNAL; s <= PLX_IN_PROGRESS; ++s)
    CHECK(std::string(status_name(s)).find("<unknown>") == std::string::npos);
  CHECK(std::string(status_name(-99)) == "PLX_ERR_<unknown>");
  CHECK(is_sticky(PLX_ERR_PEER_LOST));
  CHECK_FALSE(is_sticky(PLX_ERR_INVALID_ARGUMENT));
}
