#ifndef HDLABEL_CMPI_SHIM_H
#define HDLABEL_CMPI_SHIM_H
// OpenMPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are macros over global symbols that
// Swift cannot import. These static inline accessors expose them as plain functions.
#include <mpi.h>

static inline MPI_Comm hdl_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm hdl_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype hdl_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype hdl_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype hdl_mpi_int32(void) { return MPI_INT32_T; }
static inline MPI_Datatype hdl_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype hdl_mpi_uint8(void) { return MPI_UINT8_T; }
static inline MPI_Op hdl_mpi_op_sum(void) { return MPI_SUM; }
static inline MPI_Op hdl_mpi_op_max(void) { return MPI_MAX; }
static inline MPI_Op hdl_mpi_op_min(void) { return MPI_MIN; }
static inline MPI_Request hdl_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *hdl_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Errhandler hdl_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int hdl_mpi_success(void) { return MPI_SUCCESS; }
static inline int hdl_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline int hdl_mpi_any_source(void) { return MPI_ANY_SOURCE; }
static inline int hdl_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline MPI_Datatype hdl_mpi_char(void) { return MPI_CHAR; }
static inline MPI_Status *hdl_mpi_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }
#endif
