/* A host for the secure_getenv test (PLX-L-17). It runs in secure-execution
 * mode, where the dynamic linker ignores $ORIGIN run paths, so it dlopen()s
 * libplexus by the absolute path in argv[1]. It opens the backend PLEXUS_BACKEND
 * names and prints the text load report of that attempt to stdout. */
#include <dlfcn.h>
#include <stdio.h>

#include "plexus/plexus.h"

typedef plx_status (*open_fn)(const char *spec, plx_backend_h *out);
typedef plx_status (*close_fn)(plx_backend_h backend);
typedef plx_status (*report_fn)(plx_backend_h backend, plx_format format, char *buf,
                                size_t capacity, size_t *needed);

int main(int argc, char **argv) {
  static char text[16384];
  plx_backend_h backend = NULL;
  open_fn open_backend;
  report_fn load_report;
  close_fn close_backend;
  void *lib = argc > 1 ? dlopen(argv[1], RTLD_NOW | RTLD_LOCAL) : NULL;
  if (lib == NULL) {
    fprintf(stderr, "secure_helper: %s\n", argc > 1 ? dlerror() : "usage: secure_helper <libplexus.so.1>");
    return 2;
  }
  *(void **)&open_backend = dlsym(lib, "plx_backend_open");
  *(void **)&load_report = dlsym(lib, "plx_load_report");
  *(void **)&close_backend = dlsym(lib, "plx_backend_close");
  if (open_backend == NULL || load_report == NULL || close_backend == NULL) return 2;
  open_backend(NULL, &backend); /* the outcome is in the report */
  if (load_report(NULL, PLX_FORMAT_TEXT, text, sizeof(text), NULL) != PLX_OK) return 3;
  fputs(text, stdout);
  if (backend != NULL) close_backend(backend); /* a leak checker watches this process too */
  return 0;
}
