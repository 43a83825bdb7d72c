// The loader's thread-local last error and the name tables of the enums.
#pragma once

#include <string>

#include "plexus/types.h"

namespace plexus::loader {

// Sets this thread's plx_last_error() and returns status.
plx_status set_last_error(plx_status status, const char *message);
// A plugin's failure named for the caller: "fn: arg: <the plugin's
// message>", so that its message names the function and the argument
// like the loader's own; PLX_OK and the sticky codes pass unchanged.
plx_status name_failure(const char *fn, const char *arg, plx_status status);

const char *dtype_name(plx_dtype dtype);  // nullptr when unknown
const char *reduce_op_name(plx_reduce_op op);
const char *coll_name(plx_coll_kind coll);
const char *algorithm_name(plx_algorithm algorithm);

}  // namespace plexus::loader
