/* libarchive loaded on first use: see archive_lazy.c. Nothing to call here; the definitions stand in
   for the libarchive functions CArchive's users call. */
#ifndef UDOCKER_ARCHIVE_LAZY_H
#define UDOCKER_ARCHIVE_LAZY_H
#endif
