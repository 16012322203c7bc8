/* prom: reading what a /metrics endpoint answers (the Prometheus text
 * exposition format, version 0.0.4) in tests: a strict format check and
 * sums of samples picked by name and labels. */
#ifndef TEST_PROM_H
#define TEST_PROM_H

/* Checks `text` against the format and the conventions scrapers rely on:
 * every line is a sample, a HELP/TYPE line or a comment; a family's TYPE
 * and HELP appear once, before its samples, and all lines of a family form
 * one group (no interleaving); names and labels are well formed, values are
 * numbers; no series appears twice; counters end in _total; a histogram has
 * ascending `le` buckets with non-decreasing counts, a +Inf bucket equal to
 * its _count, and a _sum; the text ends with a newline.
 *
 * Returns NULL when the text passes, else a description of the first
 * problem with the offending line (in a static buffer). */
const char *prom_check(const char *text);

/* The sum of the samples named `name` (exactly) whose labels include every
 * pair of `match`, written as in the format (`shard="1",reason="expired"`;
 * NULL or "" matches all). *n, when given, gets how many samples matched. */
double prom_sum(const char *text, const char *name, const char *match, int *n);

#endif
