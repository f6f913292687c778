// Store protection: batches of links and ownership changes done by children in a new user namespace
// where the user's own uid is 0 and one of its subordinate uids is 1 (mapped with newuidmap/newgidmap).
#ifndef UD_USERNS_H
#define UD_USERNS_H
#include <stddef.h>

enum {
    /// linkat(src_dir/names[i], dst_dir/names[i]): a link to a file owned by the subordinate uid,
    /// which fs.protected_hardlinks refuses outside the namespace.
    UD_NS_LINK = 1,
    /// fchownat(dst_dir/names[i], uid, gid) then fchmodat to modes[i]: seals a store file.
    UD_NS_CHOWN = 2,
};

/// One directory's worth of work. Paths are relative to the root descriptors and are opened with
/// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS ("" is the root itself).
struct ud_ns_op {
    int kind;
    int src_root;
    const char *src_dir;
    int dst_root;
    const char *dst_dir;
    const char *const *names;
    /// UD_NS_LINK: the new names in dst_dir (NULL: the same names).
    const char *const *dst_names;
    const unsigned *modes;
    size_t count;
    /// Per name: 0, or the errno of its call; a directory that cannot be opened gives its errno to all.
    int *results;
};

/// The ids of the namespace: `uid`/`gid` (the caller's) become 0, `subuid`/`subgid` become 1.
struct ud_ns_ids {
    unsigned uid, gid, subuid, subgid;
    const char *newuidmap, *newgidmap;
};

/// Runs `ops` in `children` children (ops i, i+children, ... each), in one new user namespace (the
/// first child's; the others join it with setns), sharing this process's memory and descriptors. The ids in the namespace for UD_NS_CHOWN are 1:1.
/// Returns 0 when every child ran (the per-name results say what each call did), else an errno, with
/// a sentence in `err` (e.g. newuidmap's refusal). Safe from a multithreaded process: the children make
/// raw system calls only, and nothing is forked.
/// The same in two steps, so that making the namespaces (about 2 ms of setuid programs) overlaps the
/// caller's own work: `start` clones the children and starts their newuidmap/newgidmap; `finish` gives
/// them `ops` (none: they just exit), waits, and frees the session. Every start needs one finish.
/// `start` returns NULL only when out of memory (finish then reports ENOMEM).
struct ud_ns_session;
struct ud_ns_session *ud_userns_start(int children, const struct ud_ns_ids *ids);
int ud_userns_finish(struct ud_ns_session *s, struct ud_ns_op *ops, size_t nops, char *err, size_t errlen);

int ud_userns_run(struct ud_ns_op *ops, size_t nops, int children, const struct ud_ns_ids *ids,
                  char *err, size_t errlen);

#endif
