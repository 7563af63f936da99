#include "backend/creds.h"
