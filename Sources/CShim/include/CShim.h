/* Umbrella header of the CShim module: every header of this directory is listed here. A new header
   must be added here too; editing this file is also what makes cached module builds see it. */
#ifndef UDOCKER_CSHIM_UMBRELLA_H
#define UDOCKER_CSHIM_UMBRELLA_H
#include "cshim.h"
#include "copy_range.h"
#include "crc32c.h"
#include "pipe_cloexec.h"
#include "process.h"
#include "userns.h"
#endif
