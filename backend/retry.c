#include "backend/retry.h"
