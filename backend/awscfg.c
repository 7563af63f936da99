#include "backend/awscfg.h"
