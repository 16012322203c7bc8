/* dotenv: the .env file cf_config_load reads (config.h), in systemd's
 * EnvironmentFile= syntax so that --check-config and the units agree. */
#ifndef CF_DOTENV_H
#define CF_DOTENV_H

#include <stdbool.h>

/* Reads a .env file into the environment without overriding variables that
 * are already set; within the file the last line setting a variable wins. The
 * syntax is systemd's EnvironmentFile= (no inline comments; see dotenv.c):
 * what it would read otherwise is refused. Returns 0 (also when the file does
 * not exist, unless `required`) or -1 after saying on stderr what is wrong:
 * the offending line, or why the file cannot be read (a file that exists but
 * cannot be read is never taken for none: --check-config run without the
 * rights to read the real file would pass on the defaults). */
int cf_dotenv_load(const char *path, bool required);

#endif
