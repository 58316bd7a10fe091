// Function lists: the dangerous ones (flagged for policy) and the built-ins known to compute only
// from their arguments (used for `readOnly` and for lineage; anything else may read tables or
// write, so it is treated as opaque). Names match case-insensitively on the last name part,
// whatever schema is written: `myschema.pg_sleep` is flagged too (fail closed).

/**
 * Default dangerous functions. A trailing `*` matches a prefix (`dblink*`).
 * current_setting() is deliberately absent: it reads settings, not data, and superuser-only
 * settings stay protected by PostgreSQL itself. Advisory locks are absent: applications use them.
 */
export const DEFAULT_DANGEROUS_FUNCTIONS: readonly string[] = [
  // other sessions
  'pg_terminate_backend', 'pg_cancel_backend',
  // server files and directories
  'pg_read_file', 'pg_read_binary_file', 'pg_stat_file', 'pg_ls_*', 'pg_file_*', 'pg_logdir_ls',
  // large objects to and from server files
  'lo_import', 'lo_export', 'lo_from_bytea', 'lo_put', 'lo_unlink',
  // other databases / arbitrary SQL hidden in a string
  'dblink*', 'query_to_xml', 'query_to_xml_and_xmlschema', 'query_to_xmlschema',
  'table_to_xml', 'table_to_xml_and_xmlschema', 'cursor_to_xml', 'schema_to_xml',
  'schema_to_xml_and_xmlschema', 'database_to_xml', 'database_to_xml_and_xmlschema',
  // server configuration and operation
  'pg_reload_conf', 'pg_rotate_logfile', 'set_config', 'pg_promote', 'pg_switch_wal',
  'pg_create_restore_point', 'pg_backup_start', 'pg_backup_stop',
  'pg_create_physical_replication_slot', 'pg_create_logical_replication_slot', 'pg_drop_replication_slot',
  'pg_copy_physical_replication_slot', 'pg_copy_logical_replication_slot', 'pg_logical_emit_message',
  'pg_replication_origin_*', 'pg_stat_reset*', 'pg_truncate_visibility_map', 'pg_log_backend_memory_contexts',
  // holding a backend hostage
  'pg_sleep', 'pg_sleep_for', 'pg_sleep_until',
];

/** A compiled matcher over a dangerous-function list. */
export class FunctionMatcher {
  private readonly exact = new Set<string>();
  private readonly prefixes: string[] = [];

  constructor(names: readonly string[]) {
    for (const raw of names) {
      const n = raw.trim().toLowerCase();
      if (n === '') continue;
      if (n.endsWith('*')) this.prefixes.push(n.slice(0, -1));
      else this.exact.add(n);
    }
  }

  /** `name` is the function's own name (last part), already case-folded by the parser. */
  matches(name: string): boolean {
    const n = name.toLowerCase();
    if (this.exact.has(n)) return true;
    for (const p of this.prefixes) if (n.startsWith(p)) return true;
    return false;
  }
}

/**
 * Built-in functions whose result depends only on their arguments and that neither read tables
 * nor write. Only their unqualified or `pg_catalog.` forms count.
 */
export const PURE_BUILTIN_FUNCTIONS: ReadonlySet<string> = new Set([
  // strings
  'lower', 'upper', 'initcap', 'length', 'char_length', 'character_length', 'octet_length', 'bit_length',
  'substr', 'substring', 'left', 'right', 'lpad', 'rpad', 'ltrim', 'rtrim', 'btrim', 'trim', 'replace',
  'translate', 'reverse', 'repeat', 'concat', 'concat_ws', 'format', 'position', 'strpos', 'split_part',
  'starts_with', 'string_to_array', 'string_to_table', 'array_to_string', 'regexp_replace', 'regexp_match',
  'regexp_matches', 'regexp_split_to_array', 'regexp_split_to_table', 'regexp_count', 'regexp_instr',
  'regexp_like', 'regexp_substr', 'md5', 'sha224', 'sha256', 'sha384', 'sha512', 'encode', 'decode',
  'quote_ident', 'quote_literal', 'quote_nullable', 'to_char', 'to_number', 'to_date', 'to_timestamp',
  'ascii', 'chr', 'overlay', 'normalize', 'unistr', 'casefold', 'convert_from', 'convert_to', 'to_hex',
  'to_bin', 'to_oct', 'crc32', 'crc32c', 'like_escape', 'similar_to_escape', 'get_byte', 'set_byte',
  // numbers
  'abs', 'ceil', 'ceiling', 'floor', 'round', 'trunc', 'sign', 'sqrt', 'cbrt', 'power', 'pow', 'exp', 'ln',
  'log', 'log10', 'mod', 'div', 'pi', 'degrees', 'radians', 'sin', 'cos', 'tan', 'asin', 'acos', 'atan',
  'atan2', 'width_bucket', 'random', 'random_normal', 'gcd', 'lcm', 'factorial', 'scale', 'trim_scale',
  'min_scale',
  // date and time
  'now', 'clock_timestamp', 'statement_timestamp', 'transaction_timestamp', 'timeofday', 'date_trunc',
  'date_part', 'extract', 'date_bin', 'age', 'make_date', 'make_time', 'make_timestamp', 'make_timestamptz',
  'make_interval', 'justify_days', 'justify_hours', 'justify_interval', 'isfinite', 'timezone', 'overlaps',
  // aggregates
  'count', 'sum', 'avg', 'min', 'max', 'array_agg', 'string_agg', 'bool_and', 'bool_or', 'every',
  'bit_and', 'bit_or', 'bit_xor', 'json_agg', 'jsonb_agg', 'json_agg_strict', 'jsonb_agg_strict',
  'json_object_agg', 'jsonb_object_agg', 'json_object_agg_strict', 'jsonb_object_agg_strict',
  'json_object_agg_unique', 'jsonb_object_agg_unique', 'json_object_agg_unique_strict',
  'jsonb_object_agg_unique_strict', 'stddev', 'stddev_pop', 'stddev_samp', 'variance', 'var_pop',
  'var_samp', 'corr', 'covar_pop', 'covar_samp', 'regr_avgx', 'regr_avgy', 'regr_count', 'regr_intercept',
  'regr_r2', 'regr_slope', 'regr_sxx', 'regr_sxy', 'regr_syy', 'mode', 'percentile_cont',
  'percentile_disc', 'any_value', 'range_agg', 'range_intersect_agg', 'xmlagg',
  // window functions
  'row_number', 'rank', 'dense_rank', 'percent_rank', 'cume_dist', 'ntile', 'lag', 'lead', 'first_value',
  'last_value', 'nth_value',
  // JSON
  'row_to_json', 'to_json', 'to_jsonb', 'array_to_json', 'json_build_object', 'jsonb_build_object',
  'json_build_array', 'jsonb_build_array', 'json_object', 'jsonb_object', 'json_extract_path',
  'json_extract_path_text', 'jsonb_extract_path', 'jsonb_extract_path_text', 'json_array_length',
  'jsonb_array_length', 'json_typeof', 'jsonb_typeof', 'jsonb_set', 'jsonb_set_lax', 'jsonb_insert',
  'jsonb_pretty', 'jsonb_strip_nulls', 'json_strip_nulls', 'json_each', 'json_each_text', 'jsonb_each',
  'jsonb_each_text', 'json_array_elements', 'json_array_elements_text', 'jsonb_array_elements',
  'jsonb_array_elements_text', 'json_object_keys', 'jsonb_object_keys', 'json_to_record', 'jsonb_to_record',
  'json_to_recordset', 'jsonb_to_recordset', 'json_populate_record', 'jsonb_populate_record',
  'json_populate_recordset', 'jsonb_populate_recordset', 'jsonb_path_query', 'jsonb_path_exists',
  'jsonb_path_match', 'jsonb_path_query_array', 'jsonb_path_query_first', 'json_scalar', 'to_tsvector',
  'to_tsquery', 'plainto_tsquery', 'phraseto_tsquery', 'websearch_to_tsquery', 'ts_rank', 'ts_rank_cd',
  'ts_headline',
  // arrays and series
  'array_length', 'array_upper', 'array_lower', 'array_ndims', 'array_dims', 'cardinality', 'array_append',
  'array_prepend', 'array_cat', 'array_remove', 'array_replace', 'array_position', 'array_positions',
  'unnest', 'generate_series', 'generate_subscripts', 'array_fill', 'trim_array', 'array_reverse',
  'array_sort', 'array_shuffle', 'array_sample',
  // miscellaneous
  'pg_typeof', 'num_nonnulls', 'num_nulls', 'gen_random_uuid', 'uuidv4', 'uuidv7', 'version',
  'current_database', 'current_schema', 'current_schemas', 'pg_backend_pid', 'inet_client_addr',
  'inet_client_port', 'inet_server_addr', 'inet_server_port', 'format_type', 'hashtext',
  // type names used as conversion functions
  'text', 'varchar', 'int', 'int2', 'int4', 'int8', 'numeric', 'float4', 'float8', 'bool', 'date',
  'timestamp', 'timestamptz', 'interval', 'uuid', 'bytea', 'json', 'jsonb',
]);

/**
 * Built-ins that read nothing but the system catalogs: names, types, definitions, comments,
 * privileges, visibility and sizes, as psql's \\d commands, JDBC metadata and database tools
 * ask for them. Their results come from their arguments and the catalog (which an agent can read
 * as tables anyway), never from rows of user tables. Only their unqualified or `pg_catalog.`
 * forms count.
 */
export const CATALOG_BUILTIN_FUNCTIONS: ReadonlySet<string> = new Set([
  'pg_get_userbyid', 'pg_get_expr', 'pg_get_indexdef', 'pg_get_constraintdef', 'pg_get_triggerdef',
  'pg_get_viewdef', 'pg_get_ruledef', 'pg_get_functiondef', 'pg_get_function_arguments',
  'pg_get_function_identity_arguments', 'pg_get_function_result', 'pg_get_partkeydef',
  'pg_get_partition_constraintdef', 'pg_get_statisticsobjdef', 'pg_get_statisticsobjdef_columns',
  'pg_get_statisticsobjdef_expressions', 'pg_get_serial_sequence', 'pg_encoding_to_char',
  'pg_char_to_encoding', 'obj_description', 'col_description', 'shobj_description',
  'pg_table_is_visible', 'pg_type_is_visible', 'pg_function_is_visible', 'pg_operator_is_visible',
  'pg_opclass_is_visible', 'pg_opfamily_is_visible', 'pg_collation_is_visible',
  'pg_conversion_is_visible', 'pg_statistics_obj_is_visible', 'pg_ts_config_is_visible',
  'pg_ts_dict_is_visible', 'pg_ts_parser_is_visible', 'pg_ts_template_is_visible',
  'has_table_privilege', 'has_column_privilege', 'has_schema_privilege', 'has_database_privilege',
  'has_function_privilege', 'has_sequence_privilege', 'has_type_privilege', 'has_any_column_privilege',
  'pg_has_role', 'pg_relation_size', 'pg_table_size', 'pg_indexes_size', 'pg_total_relation_size',
  'pg_database_size', 'pg_size_pretty', 'pg_relation_filenode', 'pg_relation_is_publishable',
  'pg_is_in_recovery', 'pg_postmaster_start_time', 'pg_conf_load_time', 'pg_my_temp_schema',
  'pg_is_other_temp_schema', 'pg_get_keywords', 'pg_partition_ancestors', 'pg_partition_root',
  'pg_partition_tree', 'pg_tablespace_location',
]);

/** Built-ins that return one column per row when called in FROM. */
export const SCALAR_SET_RETURNING: ReadonlySet<string> = new Set([
  'generate_series', 'generate_subscripts', 'unnest', 'regexp_split_to_table', 'string_to_table',
  'json_array_elements', 'json_array_elements_text', 'jsonb_array_elements', 'jsonb_array_elements_text',
  'json_object_keys', 'jsonb_object_keys', 'jsonb_path_query', 'regexp_matches',
]);

/** Built-ins whose FROM output columns are fixed: (key, value). */
export const KEY_VALUE_SET_RETURNING: ReadonlySet<string> = new Set([
  'json_each', 'json_each_text', 'jsonb_each', 'jsonb_each_text',
]);

/** Built-ins that return a record whose columns come from a column definition list. */
export const RECORD_SET_RETURNING: ReadonlySet<string> = new Set([
  'json_to_record', 'jsonb_to_record', 'json_to_recordset', 'jsonb_to_recordset',
]);

/** Every built-in that returns a set, wherever it is called (its row count depends on its arguments). */
export const SET_RETURNING: ReadonlySet<string> = new Set([
  ...SCALAR_SET_RETURNING, ...KEY_VALUE_SET_RETURNING, ...RECORD_SET_RETURNING,
  'json_populate_recordset', 'jsonb_populate_recordset', 'pg_partition_tree', 'pg_partition_ancestors',
]);

export const AGGREGATE_FUNCTIONS: ReadonlySet<string> = new Set([
  'count', 'sum', 'avg', 'min', 'max', 'array_agg', 'string_agg', 'bool_and', 'bool_or', 'every',
  'bit_and', 'bit_or', 'bit_xor', 'json_agg', 'jsonb_agg', 'json_agg_strict', 'jsonb_agg_strict',
  'json_object_agg', 'jsonb_object_agg', 'json_object_agg_strict', 'jsonb_object_agg_strict',
  'json_object_agg_unique', 'jsonb_object_agg_unique', 'json_object_agg_unique_strict',
  'jsonb_object_agg_unique_strict', 'stddev', 'stddev_pop', 'stddev_samp', 'variance', 'var_pop',
  'var_samp', 'corr', 'covar_pop', 'covar_samp', 'regr_avgx', 'regr_avgy', 'regr_count',
  'regr_intercept', 'regr_r2', 'regr_slope', 'regr_sxx', 'regr_sxy', 'regr_syy', 'mode',
  'percentile_cont', 'percentile_disc', 'any_value', 'range_agg', 'range_intersect_agg', 'xmlagg',
]);

/** True for an unqualified or pg_catalog-qualified call of a pure built-in or a catalog one. */
export function isKnownBuiltin(parts: readonly string[]): boolean {
  const name = parts[parts.length - 1];
  if (name === undefined) return false;
  if (parts.length === 2 && parts[0] !== 'pg_catalog') return false;
  if (parts.length > 2) return false;
  return PURE_BUILTIN_FUNCTIONS.has(name) || CATALOG_BUILTIN_FUNCTIONS.has(name);
}
