#include "backend/http.h"
