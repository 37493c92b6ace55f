# The permit-fastmcp example's policy as Permit.io Terraform (provider permitio/permit-io).
# Same model as policy.yaml: apply it, then assign the roles to your users in the
# Permit.io Directory (admin -> admin, client -> user).

terraform {
  required_providers {
    permitio = {
      source  = "permitio/permit-io"
      version = "~> 0.0.14"
    }
  }
}

variable "permit_api_key" {
  type        = string
  sensitive   = true
  description = "Permit.io environment API key"
}

provider "permitio" {
  api_url = "https://api.permit.io"
  api_key = var.permit_api_key
}

# Tool calls: one action per tool (the tool name with _ . / turned into -).
resource "permitio_resource" "mcp_server" {
  key  = "mcp_server"
  name = "mcp_server"
  actions = {
    "greet"             = { name = "greet" }
    "greet-jwt"         = { name = "greet-jwt" }
    "conditional-greet" = { name = "conditional-greet" }
    "login"             = { name = "login" }
  }
  attributes = {
    "arg_number" = { name = "arg_number", type = "number" }
    "arg_name"   = { name = "arg_name", type = "string" }
    "mcp_method" = { name = "mcp_method", type = "string" }
    "tool_name"  = { name = "tool_name", type = "string" }
  }
}

# The tools/list gate.
resource "permitio_resource" "mcp_server_tools" {
  key  = "mcp_server_tools"
  name = "mcp_server_tools"
  actions = {
    "list" = { name = "list" }
  }
}

# conditional_greet only when number > 10. List checks carry no arguments, so
# the first branch keeps the tool visible in tools/list (calls always carry
# mcp_method = tools/call, which no argument can overwrite).
resource "permitio_resource_set" "big_greets" {
  key      = "big_greets"
  name     = "Big greets"
  resource = permitio_resource.mcp_server.key
  conditions = jsonencode({
    allOf = [{
      anyOf = [
        { "resource.mcp_method" = { equals = "tools/list" } },
        { "resource.arg_number" = { "greater-than" = 10 } },
      ]
    }]
  })
}

resource "permitio_role" "admin" {
  key  = "admin"
  name = "admin"
  permissions = [
    "mcp_server:greet",
    "mcp_server:greet-jwt",
    "mcp_server_tools:list",
  ]
  depends_on = [permitio_resource.mcp_server, permitio_resource.mcp_server_tools]
}

resource "permitio_role" "user" {
  key  = "user"
  name = "user"
  permissions = [
    "mcp_server:greet-jwt",
    "mcp_server_tools:list",
  ]
  depends_on = [permitio_resource.mcp_server, permitio_resource.mcp_server_tools]
}

# Grant conditional-greet on the resource set to both roles.
resource "permitio_condition_set_rule" "admin_big_greets" {
  user_set     = permitio_role.admin.key
  resource_set = permitio_resource_set.big_greets.key
  permission   = "mcp_server:conditional-greet"
}

resource "permitio_condition_set_rule" "user_big_greets" {
  user_set     = permitio_role.user.key
  resource_set = permitio_resource_set.big_greets.key
  permission   = "mcp_server:conditional-greet"
}
