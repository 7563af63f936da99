#include "backend/ddb.h"
