/*
 * wal.h: the write-ahead log. A write is acknowledged only after its record
 * is on disk and fsynced.
 *
 * Records are opaque byte strings with a sequence number assigned by the WAL
 * (strictly increasing from 1). Files live in one directory, named by the
 * first sequence they hold, and roll over at a size threshold.
 *
 * Group commit: wal_append is called concurrently by many writers. One of
 * them becomes the leader, writes every queued record with one write and one
 * fsync, and wakes the followers whose records that fsync covered; so N
 * concurrent writers share far fewer than N fsyncs.
 *
 * A failed write or fsync fails every record of that group (none is
 * acknowledged); the file is truncated back to the last durable offset and
 * later appends may succeed (e.g. after disk space returns).
 *
 * Replay tolerates a torn tail: the first record whose length or checksum is
 * wrong ends the log; the file is truncated there and later files (which can
 * only exist if the crash happened mid-roll) are ignored and removed.
 */
#ifndef ST_WAL_H
#define ST_WAL_H

#include <stddef.h>
#include <stdint.h>

struct st_errctx;
struct wal;

struct wal_opts {
    uint64_t file_bytes; /* roll to a new file past this size; 0: 64 MiB */
    uint32_t max_record; /* largest record accepted; 0: 64 MiB */
};

struct wal_stats {
    uint64_t appends;    /* records acknowledged */
    uint64_t fsyncs;     /* group commits */
    uint64_t bytes;      /* bytes written, headers included */
    uint64_t files;      /* files currently on disk */
    uint64_t last_seq;
    uint64_t corruptions; /* damaged records found by replay (not torn tails) */
};

typedef int (*wal_replay_fn)(void *arg, uint64_t seq, const uint8_t *rec, size_t len);

/* Open (creating dir if needed). Must be followed by wal_replay before appends. */
int wal_open(struct wal **out, const char *dir, const struct wal_opts *opts,
             struct st_errctx *err);
/* Call cb for every intact record with seq >= from_seq, in order. A non-zero
 * return from cb stops replay and is returned. Truncates a torn tail. */
int wal_replay(struct wal *w, uint64_t from_seq, wal_replay_fn cb, void *arg,
               struct st_errctx *err);
/* Append one record; returns once it is fsynced. Thread-safe. */
int wal_append(struct wal *w, const void *rec, size_t len, uint64_t *seq_out,
               struct st_errctx *err);
/* Remove whole files whose records all have seq < seq. Thread-safe. */
int wal_truncate_before(struct wal *w, uint64_t seq, struct st_errctx *err);
void wal_get_stats(struct wal *w, struct wal_stats *out);
void wal_close(struct wal *w); /* NULL is a no-op */

/* Read-only check of a WAL directory (strata verify): reports each damaged
 * record with file and offset; a torn tail in the newest file is not a
 * problem. Returns the number of problems or a negative ST_E* code. */
int wal_verify_dir(const char *dir,
                   void (*report)(void *arg, const char *path, uint64_t off, const char *msg),
                   void *arg);

#endif
