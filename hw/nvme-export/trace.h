#include "trace/trace-hw_nvme_export.h"
