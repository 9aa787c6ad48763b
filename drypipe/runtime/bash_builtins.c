/* Loadable bash builtins that let the task launcher change state without forking `mv`.
 * drypipe_rename SRC DST  -- rename(2): atomic replacement of a task's state file
 * drypipe_rmdir DIR       -- rmdir(2), silently ignoring a non-empty or missing dir
 * drypipe_mkdir DIR       -- mkdir(2), an existing dir is fine
 * Built by `make` (scripts/build-builtins.sh); the launcher falls back to mv/rmdir without it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "loadables.h"

static int drypipe_rename_builtin(WORD_LIST *list) {
  if (!list || !list->next || list->next->next) { builtin_usage(); return EX_USAGE; }
  if (rename(list->word->word, list->next->word->word) != 0) {
    builtin_error("%s -> %s: %s", list->word->word, list->next->word->word, strerror(errno));
    return EXECUTION_FAILURE;
  }
  return EXECUTION_SUCCESS;
}

static int drypipe_rmdir_builtin(WORD_LIST *list) {
  if (!list || list->next) { builtin_usage(); return EX_USAGE; }
  rmdir(list->word->word);
  return EXECUTION_SUCCESS;
}

static int drypipe_mkdir_builtin(WORD_LIST *list) {
  if (!list || list->next) { builtin_usage(); return EX_USAGE; }
  if (mkdir(list->word->word, 0777) != 0 && errno != EEXIST) {
    builtin_error("%s: %s", list->word->word, strerror(errno));
    return EXECUTION_FAILURE;
  }
  return EXECUTION_SUCCESS;
}

static char *drypipe_rename_doc[] = { "Atomically rename SRC to DST with rename(2).", NULL };
static char *drypipe_rmdir_doc[] = { "Remove DIR if it is empty.", NULL };

struct builtin drypipe_rename_struct = { "drypipe_rename", drypipe_rename_builtin, BUILTIN_ENABLED,
                                         drypipe_rename_doc, "drypipe_rename SRC DST", 0 };
struct builtin drypipe_rmdir_struct = { "drypipe_rmdir", drypipe_rmdir_builtin, BUILTIN_ENABLED,
                                        drypipe_rmdir_doc, "drypipe_rmdir DIR", 0 };
static char *drypipe_mkdir_doc[] = { "Create DIR (an existing one is fine).", NULL };
struct builtin drypipe_mkdir_struct = { "drypipe_mkdir", drypipe_mkdir_builtin, BUILTIN_ENABLED,
                                        drypipe_mkdir_doc, "drypipe_mkdir DIR", 0 };
