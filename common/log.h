/* log: one line per event on stderr, with a level, a process tag and a subsystem tag.
 *
 *   2026-11-28T10:00:00.123Z INFO  gateway[4242] link: broker 1 linked
 *
 * or, with LOG_FORMAT=json, one JSON object per line:
 *
 *   {"ts":"2026-11-28T10:00:00.123Z","level":"info","process":"gateway","pid":4242,
 *    "module":"link","msg":"broker 1 linked"}
 *
 * When stderr is connected to the journal (systemd sets JOURNAL_STREAM), lines
 * go to journald natively instead, with PRIORITY, SYSLOG_IDENTIFIER,
 * CONFAB_MODULE, and CONFAB_ROOM / CONFAB_CONN when the message names a room
 * ("room <name>") or a connection ("conn <id>"), which every line about one
 * does by convention.
 *
 * Lines are written with a single write(2) so that lines from several processes
 * sharing one stderr never interleave. Never log tokens, secrets or message
 * bodies above debug. */
#ifndef CF_LOG_H
#define CF_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum cf_log_level { CF_LOG_DEBUG = 0, CF_LOG_INFO, CF_LOG_WARN, CF_LOG_ERROR };

/* Names the process in every line ("gateway", "broker-1", ...). The string
 * must outlive all logging; a copy of at most 31 bytes is kept. */
void cf_log_set_process(const char *name);
void cf_log_set_level(enum cf_log_level level);

enum cf_log_format { CF_LOG_TEXT = 0, CF_LOG_JSON, CF_LOG_JOURNAL };
/* Text or JSON lines; CF_LOG_JOURNAL is chosen by cf_log_detect_journal. */
void cf_log_set_format(enum cf_log_format f);
/* Switches to native journald logging when stderr is the journal stream
 * named by JOURNAL_STREAM. Returns true when it did. */
int cf_log_detect_journal(void);
/* "text" or "json" -> 0, else -1. */
int cf_log_format_parse(const char *name, enum cf_log_format *out);
enum cf_log_level cf_log_get_level(void);

/* Parses "debug", "info", "warn", "error" (case-insensitive). Returns 0 and
 * sets *out, or -1 when the name is unknown. */
int cf_log_level_parse(const char *name, enum cf_log_level *out);

int cf_log_enabled(enum cf_log_level level);

__attribute__((format(printf, 3, 4))) void cf_log(enum cf_log_level level, const char *tag,
                                                  const char *fmt, ...);
void cf_log_v(enum cf_log_level level, const char *tag, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* The journal's CONFAB_ROOM and CONFAB_CONN fields: the token that the
 * conversion right after `key` ("room ", "conn ") in `fmt` wrote into msg
 * (mlen bytes, formatted from fmt and ap, which is not consumed), copied into
 * out (cap bytes; "" when fmt has no such key). `digits`: the token is
 * digits, else room-name characters. Found through the format, not by
 * searching msg: that holds peers' and clients' strings, and a user named
 * "room lobby" must not put its lines under CONFAB_ROOM=lobby. */
void cf_log_field(const char *fmt, va_list ap, const char *msg, size_t mlen, const char *key,
                  int digits, char *out, size_t cap);

#define CF_DEBUG(tag, ...)                                                                         \
    do {                                                                                           \
        if (cf_log_enabled(CF_LOG_DEBUG))                                                          \
            cf_log(CF_LOG_DEBUG, tag, __VA_ARGS__);                                                \
    } while (0)
#define CF_INFO(tag, ...) cf_log(CF_LOG_INFO, tag, __VA_ARGS__)
#define CF_WARN(tag, ...) cf_log(CF_LOG_WARN, tag, __VA_ARGS__)
#define CF_ERROR(tag, ...) cf_log(CF_LOG_ERROR, tag, __VA_ARGS__)

#endif
