/* A host in a few lines of C, for the tests that need a fresh process
 * (logging is set up once per process): opens argv[1] as the backend spec
 * (or PLEXUS_BACKEND when there is no argument), closes it, and exits 0 when
 * it opened, 1 when not. */
#include <stddef.h>

#include "plexus/plexus.h"

int main(int argc, char **argv) {
  plx_backend_h backend = NULL;
  if (plx_backend_open(argc > 1 ? argv[1] : NULL, &backend) != PLX_OK) return 1;
  return plx_backend_close(backend) == PLX_OK ? 0 : 1;
}
