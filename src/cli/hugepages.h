/* hugepages.h: huge pages for malloc (see hugepages.c). */
#ifndef CUTOUT_CLI_HUGEPAGES_H
#define CUTOUT_CLI_HUGEPAGES_H

/* Re-execute the process once with glibc's huge-page tunable, when it
 * pays and is possible; returns only when it does not re-execute. */
void cli_malloc_hugepages(char **argv);

#endif
