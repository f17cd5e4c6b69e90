/* The arbiter: binds, initialises Python, forks and supervises workers, handles signals. */
#ifndef CU_MASTER_H
#define CU_MASTER_H

#include "config/config.h"

/* Run the master until it stops. Returns the process exit code. */
int cu_master_run(cu_config_t *cfg);

#endif
