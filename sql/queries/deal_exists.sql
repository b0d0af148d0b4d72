SELECT EXISTS (SELECT 1 FROM catalog.deals WHERE deal_id = $1)
