#include "backend/sigv4.h"
