#include "trace/trace-hw_vdpa_mgmt.h"
