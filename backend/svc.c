#include "backend/svc.h"
