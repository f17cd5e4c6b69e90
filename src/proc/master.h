/* The arbiter: binds, initialises Python, forks and supervises workers, handles signals. */
#ifndef CU_MASTER_H
#define CU_MASTER_H

#include "config/config.h"

/* Run the master until it stops. Returns the process exit code: 0 after TERM/QUIT/INT,
 * 1 when startup fails (bind, pidfile, Python init, --preload import), 3 when a worker
 * failed to boot, 4 when the app failed to load in a worker.
 * Before calling: cu_proctitle_init() (proc/proctitle.h) from main() so titles can be set. */
int cu_master_run(cu_config_t *cfg);

/* The command line, kept for HUP (argv is parsed again, which re-evaluates the config
 * file) and USR2 (the new master is exec'd with it). Call before cu_master_run; argv must
 * outlive the master (cu_proctitle_init's heap copies do). */
void cu_master_set_argv(int argc, char **argv);

#endif
