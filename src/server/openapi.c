/*
 * openapi.c: GET /api, an OpenAPI 3 description of the server's API.
 * The model enum comes from the registry, so the web page (and any
 * client) can list the models from it.
 */
#include "server.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static cJSON *param(const char *name, const char *in, const char *type,
                    const char *desc, int required)
{
  cJSON *p = cJSON_CreateObject();
  cJSON_AddStringToObject(p, "name", name);
  cJSON_AddStringToObject(p, "in", in);
  cJSON_AddBoolToObject(p, "required", required);
  cJSON_AddStringToObject(p, "description", desc);
  cJSON *s = cJSON_AddObjectToObject(p, "schema");
  cJSON_AddStringToObject(s, "type", type);
  return p;
}

struct field {
  const char *name, *type, *desc;
  double dflt; /* -1: none; booleans 0/1 */
};
static const struct field fields[] = {
    {"a", "boolean", "alpha matting (rembg's alpha_matting)", 0},
    {"af", "integer", "alpha matting foreground threshold 0-255", 240},
    {"ab", "integer", "alpha matting background threshold 0-255", 10},
    {"ae", "integer", "alpha matting erode size, >= 0", 10},
    {"om", "boolean", "return the mask only", 0},
    {"ppm", "boolean", "post-process the mask", 0},
    {"dc", "boolean", "decontaminate the edge colours (cutout)", 0},
    {"format", "string", "output format: png (default), webp or jpg "
                         "(cutout)", -1},
    {"quality", "integer", "JPEG / WebP quality 1-100, default 90 "
                           "(cutout)", -1},
};
#define NFIELDS (sizeof fields / sizeof fields[0])

static void set_default(cJSON *schema, const struct field *f)
{
  if (f->dflt < 0) return;
  if (strcmp(f->type, "boolean") == 0)
    cJSON_AddBoolToObject(schema, "default", f->dflt != 0);
  else
    cJSON_AddNumberToObject(schema, "default", f->dflt);
}

static cJSON *model_schema(const struct srv_config *cfg)
{
  cJSON *s = cJSON_CreateObject();
  cJSON_AddStringToObject(s, "type", "string");
  cJSON_AddStringToObject(s, "default", cfg->base.model);
  cJSON *e = cJSON_AddArrayToObject(s, "enum");
  if (!cutout_model_info_find(cfg->base.model))
    cJSON_AddItemToArray(e, cJSON_CreateString(cfg->base.model));
  for (size_t i = 0; i < cutout_model_count(); i++)
    cJSON_AddItemToArray(e,
                         cJSON_CreateString(cutout_model_info_at(i)->name));
  return s;
}

static cJSON *responses(void)
{
  cJSON *r = cJSON_CreateObject();
  cJSON *ok = cJSON_AddObjectToObject(r, "200");
  cJSON_AddStringToObject(ok, "description", "the cutout (or the mask)");
  cJSON *c = cJSON_AddObjectToObject(ok, "content");
  const char *types[] = {"image/png", "image/webp", "image/jpeg"};
  for (int i = 0; i < 3; i++) {
    cJSON *t = cJSON_AddObjectToObject(c, types[i]);
    cJSON *s = cJSON_AddObjectToObject(t, "schema");
    cJSON_AddStringToObject(s, "type", "string");
    cJSON_AddStringToObject(s, "format", "binary");
  }
  static const char *const codes[][2] = {
      {"400", "bad URL, failed fetch, or an image that cannot be decoded"},
      {"413", "body, fetched file or image dimensions over the limits"},
      {"415", "not multipart/form-data, or not an image"},
      {"422", "a missing or invalid parameter"},
      {"503", "queue full, timed out or shutting down (Retry-After)"}};
  for (int i = 0; i < 5; i++) {
    cJSON *e = cJSON_AddObjectToObject(r, codes[i][0]);
    cJSON_AddStringToObject(e, "description", codes[i][1]);
    cJSON *t = cJSON_AddObjectToObject(
        cJSON_AddObjectToObject(e, "content"), "application/json");
    cJSON *s = cJSON_AddObjectToObject(t, "schema");
    cJSON_AddStringToObject(s, "type", "object");
    cJSON *pr = cJSON_AddObjectToObject(s, "properties");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(pr, "detail"), "type",
                            "string");
  }
  return r;
}

char *openapi_json(const struct srv_config *cfg, size_t *len)
{
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "openapi", "3.0.2");
  cJSON *info = cJSON_AddObjectToObject(root, "info");
  cJSON_AddStringToObject(info, "title", "Rembg");
  cJSON_AddStringToObject(info, "version", cutout_version());
  cJSON_AddStringToObject(info, "description",
                          "cutout s: rembg's HTTP API, served by cutout");
  cJSON *paths = cJSON_AddObjectToObject(root, "paths");
  cJSON *rm = cJSON_AddObjectToObject(paths, "/api/remove");

  /* GET: everything in the query */
  cJSON *get = cJSON_AddObjectToObject(rm, "get");
  cJSON_AddStringToObject(get, "summary", "Remove the background of the "
                                          "image at url");
  cJSON *gp = cJSON_AddArrayToObject(get, "parameters");
  cJSON_AddItemToArray(gp, param("url", "query", "string",
                                 "http(s) URL of the image", 1));
  cJSON *m = param("model", "query", "string", "model name", 0);
  cJSON_ReplaceItemInObject(m, "schema", model_schema(cfg));
  cJSON_AddItemToArray(gp, m);
  for (size_t i = 0; i < NFIELDS; i++) {
    cJSON *p = param(fields[i].name, "query", fields[i].type, fields[i].desc,
                     0);
    set_default(cJSON_GetObjectItem(p, "schema"), &fields[i]);
    cJSON_AddItemToArray(gp, p);
  }
  cJSON_AddItemToArray(gp, param("bgc", "query", "string",
                                 "background colour R,G,B,A", 0));
  cJSON_AddItemToArray(gp, param("extras", "query", "string",
                                 "rembg's extras, a JSON object", 0));
  cJSON_AddItemToObject(get, "responses", responses());

  /* POST: the file and rembg's fields in the form; bgc and extras in the
   * query (the fields are accepted in the query too) */
  cJSON *post = cJSON_AddObjectToObject(rm, "post");
  cJSON_AddStringToObject(post, "summary", "Remove the background of an "
                                           "uploaded image");
  cJSON *pp = cJSON_AddArrayToObject(post, "parameters");
  cJSON_AddItemToArray(pp, param("bgc", "query", "string",
                                 "background colour R,G,B,A", 0));
  cJSON_AddItemToArray(pp, param("extras", "query", "string",
                                 "rembg's extras, a JSON object", 0));
  cJSON *body = cJSON_AddObjectToObject(post, "requestBody");
  cJSON_AddBoolToObject(body, "required", 1);
  cJSON *schema = cJSON_AddObjectToObject(
      cJSON_AddObjectToObject(cJSON_AddObjectToObject(body, "content"),
                              "multipart/form-data"),
      "schema");
  cJSON_AddStringToObject(schema, "type", "object");
  cJSON *req = cJSON_AddArrayToObject(schema, "required");
  cJSON_AddItemToArray(req, cJSON_CreateString("file"));
  cJSON *props = cJSON_AddObjectToObject(schema, "properties");
  cJSON *file = cJSON_AddObjectToObject(props, "file");
  cJSON_AddStringToObject(file, "type", "string");
  cJSON_AddStringToObject(file, "format", "binary");
  cJSON_AddItemToObject(props, "model", model_schema(cfg));
  for (size_t i = 0; i < NFIELDS; i++) {
    cJSON *f = cJSON_AddObjectToObject(props, fields[i].name);
    cJSON_AddStringToObject(f, "type", fields[i].type);
    cJSON_AddStringToObject(f, "description", fields[i].desc);
    set_default(f, &fields[i]);
  }
  cJSON_AddItemToObject(post, "responses", responses());

  static const char *const ops[][3] = {
      {"/healthz", "the process is up", "text/plain"},
      {"/readyz", "the default model is loaded (503 until then)",
       "application/json"},
      {"/metrics", "Prometheus metrics", "text/plain"}};
  for (int i = 0; i < 3; i++) {
    cJSON *g = cJSON_AddObjectToObject(cJSON_AddObjectToObject(paths,
                                                               ops[i][0]),
                                       "get");
    cJSON_AddStringToObject(g, "summary", ops[i][1]);
    cJSON *r = cJSON_AddObjectToObject(g, "responses");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(r, "200"),
                            "description", ops[i][2]);
  }
  char *s = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (s) *len = strlen(s);
  return s;
}
