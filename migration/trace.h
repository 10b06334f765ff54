#include "trace/trace-migration_iolab.h"
